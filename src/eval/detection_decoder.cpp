#include "eval/detection_decoder.h"

#include <algorithm>
#include <cmath>

namespace lowbit {

Result<ScoreMode> parse_score_mode(const std::string& s) {
    if (s == "auto") return ScoreMode::Auto;
    if (s == "logits") return ScoreMode::Logits;
    if (s == "probs" || s == "probabilities") return ScoreMode::Probabilities;
    return invalid("--scores '{}': expected auto, logits or probs", s);
}

namespace eval {

std::vector<std::string> model_class_names(const Model& model) {
    for (const auto& [k, v] : model.metadata) {
        if (k == "names") return parse_ultralytics_names(v);
    }
    return {};
}

Result<DetectionDecoder> DetectionDecoder::create(const std::string& output_name,
                                                  const Tensor& output, int imgsz,
                                                  const DetectionDecoderOptions& opts,
                                                  const std::vector<CocoCategory>& categories,
                                                  const std::vector<std::string>& class_names) {
    DetectionDecoder d;
    d.output_name_ = output_name;
    d.imgsz_ = imgsz;
    int expected = static_cast<int>(categories.size());
    if (!class_names.empty()) expected = static_cast<int>(class_names.size());
    LOWBIT_ASSIGN(d.layout_,
                  detect_head_layout(output_name, output.shape(), imgsz, opts.head, expected));
    LOWBIT_ASSIGN(d.cmap_, build_class_map(categories, d.layout_.num_classes, opts.class_map_file,
                                           class_names));
    d.dec_ = opts.decode;
    if (d.layout_.kind == HeadKind::EndToEnd) {
        d.dec_.apply_sigmoid = false;
    } else if (opts.scores == ScoreMode::Auto) {
        d.dec_.apply_sigmoid = !class_values_are_probabilities(output, d.layout_);
        d.found_probabilities_ = !d.dec_.apply_sigmoid;
    } else {
        d.dec_.apply_sigmoid = opts.scores == ScoreMode::Logits;
    }
    return d;
}

Result<int64_t> DetectionDecoder::append(const Tensor& output, const Letterbox& lb,
                                         int64_t image_id,
                                         std::vector<CocoAnnotation>& results) const {
    LOWBIT_ASSIGN(std::vector<Detection> dets, decode_detections(output, layout_, imgsz_, dec_));
    int64_t dropped = 0;
    for (Detection& d : dets) {
        const int64_t cat = cmap_.category(d.cls);
        if (cat < 0) {
            ++dropped;
            continue;
        }
        unletterbox_xyxy(lb, d.box);
        if (!std::isfinite(d.box[0]) || !std::isfinite(d.box[1]) || !std::isfinite(d.box[2]) ||
            !std::isfinite(d.box[3]) || !std::isfinite(d.score)) {
            return invalid("model output '{}' produced a non-finite box or score", output_name_);
        }
        CocoAnnotation a;
        a.id = static_cast<int64_t>(results.size()) + 1;
        a.image_id = image_id;
        a.category_id = cat;
        // COCO [x, y, w, h] from the clipped xyxy box, in float32 (seed-spec §5.7).
        a.bbox = {d.box[0], d.box[1], std::max(0.0f, d.box[2] - d.box[0]),
                  std::max(0.0f, d.box[3] - d.box[1])};
        a.area = a.bbox[2] * a.bbox[3];
        a.score = d.score;
        results.push_back(a);
    }
    return dropped;
}

}  // namespace eval
}  // namespace lowbit
