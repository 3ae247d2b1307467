// One decoder from a detector's output to COCO results, shared by `lowbit eval`
// (evaluate_detector) and sensitivity's map metric, so that both turn the same output into the
// same detections: head layout, class map and score activation are decided once from the first
// output and kept for the run; each image's output is then decoded (decode.h), NMS'ed,
// un-letterboxed and clipped, and written as COCO [x, y, w, h] results (seed-spec §5.7).
//
// Non-finite boxes: a detection whose box (after un-letterboxing and clipping) or score is not
// finite is an error naming the output ("model output 'NAME' produced a non-finite box or
// score"), never silently dropped: a NaN box means the model (or a perturbation of it) diverged,
// and a metric computed without those boxes would hide it. Detections whose class has no
// category are dropped and counted.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"
#include "data/coco.h"
#include "data/letterbox.h"
#include "eval/class_map.h"
#include "eval/decode.h"
#include "ir/graph.h"

namespace lowbit {

enum class ScoreMode { Auto, Logits, Probabilities };
Result<ScoreMode> parse_score_mode(const std::string& s);  // auto | logits | probs

namespace eval {

struct DetectionDecoderOptions {
    DecodeOptions decode;  // apply_sigmoid is decided by create() from `scores`
    HeadKind head = HeadKind::Auto;
    ScoreMode scores = ScoreMode::Auto;
    std::string class_map_file;
};

// The model's class names from its Ultralytics "names" metadata (empty when absent).
std::vector<std::string> model_class_names(const Model& model);

class DetectionDecoder {
public:
    DetectionDecoder() = default;

    // Decides the layout of output `output_name` from its first value `output` at input size
    // `imgsz`, the class map (from `categories`, the model's `class_names` and the options'
    // file) and whether scores go through a sigmoid (end-to-end heads: never; Auto: unless the
    // class values already are probabilities).
    static Result<DetectionDecoder> create(const std::string& output_name, const Tensor& output,
                                           int imgsz, const DetectionDecoderOptions& opts,
                                           const std::vector<CocoCategory>& categories,
                                           const std::vector<std::string>& class_names);

    // Appends the detections of one image's `output` (letterboxed by `lb`) to `results` as COCO
    // results of `image_id`, ids continuing from results.size() + 1. Returns how many
    // detections were dropped for a class without a category.
    Result<int64_t> append(const Tensor& output, const Letterbox& lb, int64_t image_id,
                           std::vector<CocoAnnotation>& results) const;

    const HeadLayout& layout() const { return layout_; }
    const ClassMap& class_map() const { return cmap_; }
    bool sigmoid_applied() const { return dec_.apply_sigmoid; }
    // Auto score mode found the class values already in [0, 1] (so no sigmoid).
    bool found_probabilities() const { return found_probabilities_; }

private:
    std::string output_name_;
    int imgsz_ = 0;
    HeadLayout layout_;
    ClassMap cmap_;
    DecodeOptions dec_;
    bool found_probabilities_ = false;
};

}  // namespace eval
}  // namespace lowbit
