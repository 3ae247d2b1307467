// COCO annotation files (instances_*.json) and COCO detection results files, read with the
// semantics pycocotools gives them (research/yolo-coco.md §4.2):
//  - ground truth: `images`, `annotations`, `categories`; an annotation's `area` is the JSON
//    field (the mask area), `iscrowd` marks crowd regions (missing = 0);
//  - results: a JSON array of {image_id, category_id, bbox [x,y,w,h], score}; as in
//    COCO.loadRes, each result gets id = index + 1, area = w*h and iscrowd = 0.
// Both are parsed with a streaming (SAX) reader that skips what bbox evaluation does not use
// (segmentation polygons, RLEs), so a 100 MB results file costs no DOM.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace lowbit {

struct CocoImage {
    int64_t id = 0;
    std::string file_name;
    int64_t width = 0;   // 0 when absent
    int64_t height = 0;  // 0 when absent
};

struct CocoCategory {
    int64_t id = 0;
    std::string name;
};

// One ground-truth annotation or one detection result.
struct CocoAnnotation {
    int64_t id = 0;
    int64_t image_id = 0;
    int64_t category_id = 0;
    std::array<double, 4> bbox{};  // x, y, w, h
    double area = 0;
    double score = 0;  // results only
    bool iscrowd = false;
};

struct CocoDataset {
    std::vector<CocoImage> images;
    std::vector<CocoAnnotation> annotations;
    std::vector<CocoCategory> categories;
};

// Reads a ground-truth file. Errors name the file and the offending record (e.g.
// "annotations[12] (id 5) has no 'area'").
Result<CocoDataset> load_coco_gt(const std::string& path);
// Same, from JSON text; `what` names the source in errors.
Result<CocoDataset> parse_coco_gt(const std::string& json, const std::string& what);

// Reads a results file (a JSON array; an empty array is valid and means "no detections").
Result<std::vector<CocoAnnotation>> load_coco_results(const std::string& path);
Result<std::vector<CocoAnnotation>> parse_coco_results(const std::string& json,
                                                       const std::string& what);

// Serializes results compactly, as pycocotools/json.dump would read them back bit-exactly
// (shortest round-trip decimal for every double).
std::string coco_results_to_json(const std::vector<CocoAnnotation>& results);

}  // namespace lowbit
