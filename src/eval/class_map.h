// Model class index -> COCO category id (research/seed-spec.md §5.7, research/yolo-coco.md §4.8).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "data/coco.h"

namespace lowbit {

// Ultralytics' coco80_to_coco91_class(): contiguous class i -> COCO 2017 category id.
const std::array<int64_t, 80>& coco80_to_coco91();

struct ClassMap {
    std::vector<int64_t> category_of;  // index = model class; -1 = not mapped (dropped)
    std::string how;                   // "coco80->91", "i-th category", or the file
    int64_t category(int cls) const {
        if (cls < 0 || static_cast<size_t>(cls) >= category_of.size()) return -1;
        return category_of[static_cast<size_t>(cls)];
    }
};

// The mapping for a model with `num_classes` classes (0 = unknown, e.g. end-to-end heads) and
// class names `model_names` (from the model's metadata, may be empty):
//  - `map_file` when given: a JSON array of category ids (index = class), a JSON object
//    {"class": category_id, ...}, or a text file with one category id per line;
//  - by name, as the seed maps coco.yaml names, when every category name of the annotations
//    is one of the model's class names;
//  - the COCO 80 -> 91 table when the model has 80 classes (or, count unknown, the annotations
//    have 80 categories) and every category id of the annotations is a COCO 2017 id;
//  - otherwise class i -> the i-th category of the annotations in ascending id order.
Result<ClassMap> build_class_map(const std::vector<CocoCategory>& categories, int num_classes,
                                 const std::string& map_file = "",
                                 const std::vector<std::string>& model_names = {});

// Class names from an Ultralytics ONNX "names" metadata entry ("{0: 'person', 1: 'bicycle'}"),
// index order; empty if `s` does not parse.
std::vector<std::string> parse_ultralytics_names(const std::string& s);

}  // namespace lowbit
