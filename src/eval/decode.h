// YOLO output decoders and NMS (research/seed-spec.md §5.5-5.6, research/yolo-coco.md §2.5).
//
// Three layouts, chosen from the output shape (or forced):
//  - raw DFL      [1, 64+nc, N] (or [1, N, 64+nc]): 4 sides x 16 bins of distance logits, then
//                 nc class logits; N = anchors of strides 8/16/32 at the input size.
//  - decoded      [1, 4+nc, N] (or transposed): cx, cy, w, h in letterbox pixels, then scores.
//  - end-to-end   [1, K, 6]: x1, y1, x2, y2, score, class (NMS already done in the graph).
//  - query (DETR) [1, K, 4+nc]: K object queries (K not the anchor count), cx, cy, w, h
//                 normalized to [0, 1] of the input, then class scores (RT-DETR's export: already
//                 probabilities). Each query gives its best class; no NMS (set prediction).
// Class channels go through a sigmoid unless they already are probabilities. Boxes come out in
// letterbox pixels (xyxy), in descending score order.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"

namespace lowbit {

enum class HeadKind { Auto, Dfl, Decoded, EndToEnd, Query };

const char* head_kind_name(HeadKind k);  // "auto", "dfl", "decoded", "e2e", "detr"
Result<HeadKind> parse_head_kind(const std::string& s);

struct HeadLayout {
    HeadKind kind = HeadKind::Auto;
    int num_classes = 0;         // 0 for end-to-end (the class is a value, not a channel)
    int64_t num_rows = 0;        // anchors N, or K detections for end-to-end / queries
    bool channels_first = true;  // [C, N] rather than [N, C] (after dropping the batch dim)
    std::string describe() const;
};

// Anchors of strides 8, 16, 32 for a square input: sum of (imgsz / s)^2 (8400 at 640).
int64_t anchor_count(int imgsz);

// Picks the decoder for output `name` with `shape` at input size `imgsz`. `expected_classes`
// (the annotation file's category count, 0 if unknown) resolves channel counts other than the
// COCO 84/144. Errors name the tensor and its shape and suggest --head.
Result<HeadLayout> detect_head_layout(const std::string& name, const Shape& shape, int imgsz,
                                      HeadKind requested = HeadKind::Auto,
                                      int expected_classes = 0);

// One detection in letterbox pixels.
struct Detection {
    float box[4];  // x1, y1, x2, y2
    float score;
    int cls;
};

struct DecodeOptions {
    float conf = 0.001f;        // keep score >= conf (seed: inclusive)
    float iou = 0.7f;           // NMS: suppress IoU > iou
    int max_det = 300;          // after NMS
    int pre_nms_topk = 30000;   // candidates kept before NMS
    bool apply_sigmoid = true;  // class channels are logits
};

// True when every class value of a DFL/decoded output lies in [0, 1]: the model already
// applied the sigmoid (e.g. Ultralytics' decoded one2many export).
bool class_values_are_probabilities(const Tensor& output, const HeadLayout& layout);

// Decodes one image's output (batch 1, float32 or float16) into detections.
Result<std::vector<Detection>> decode_detections(const Tensor& output, const HeadLayout& layout,
                                                 int imgsz, const DecodeOptions& opts);

// Every row of a raw DFL or decoded head, without thresholds or NMS (the task-aware sensitivity
// metric, eval/detection_error.h): boxes [rows x 4] xyxy in letterbox pixels (DFL: the
// expectation over the bins), class scores [rows x nc] after the sigmoid when apply_sigmoid.
struct DenseDecoded {
    int64_t rows = 0;
    int num_classes = 0;
    std::vector<float> boxes;
    std::vector<float> scores;
};
Result<DenseDecoded> decode_dense(const Tensor& output, const HeadLayout& layout, int imgsz,
                                  bool apply_sigmoid);

// Class-aware greedy NMS over `cands` sorted by descending score (seed-spec §5.5 step 8): keep
// the head, drop same-class candidates with IoU > iou_thr, stop at max_det. IoU uses widths
// clamped at 0 and inter / (area_a + area_b - inter + 1e-9), in float32 like the seed's NumPy.
// Comparing classes directly is what the seed's +4096*class offset achieves, minus the float32
// precision the offset costs.
std::vector<Detection> nms_class_aware(const std::vector<Detection>& cands, float iou_thr,
                                       int max_det);

}  // namespace lowbit
