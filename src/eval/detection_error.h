// A task-aware distance between two outputs of the same detector (sensitivity's `detection`
// metric, issue 15 item 4): measured on decoded detections rather than raw logits, so the 64
// DFL logits per anchor and far-below-threshold class logits count only as far as they move a
// box or a confidence that matters.
//
// Dense heads (raw DFL, decoded xywh), per anchor a, with boxes b (xyxy letterbox pixels; DFL:
// the expectation over the bins times the stride) and class scores p (after the sigmoid):
//   w_a   = max(max_c p_ref[a,c], max_c p_q[a,c])          (confidence: reference or candidate)
//   score = sum_a w_a * sum_c (p_q[a,c] - p_ref[a,c])^2
//   box   = sum_a w_a * sum_i min(1, ((b_q[a,i] - b_ref[a,i]) / s_a)^2),
//           s_a = max(8, (w_ref + h_ref) / 2) of the reference box (a relative error, capped).
// End-to-end heads [K, 6] (NMS done in the graph, rows reorder when scores move): reference
// rows in descending score are matched greedily to the unmatched candidate row of the same
// class with the highest IoU (>= 0.5); a matched pair adds w (p_q - p_ref)^2 and w * box with
// w = max(p_ref, p_q); an unmatched row of either side adds p (p^2 + 4) (its score lost, its
// box counted at the cap).
// The sums are per image (not normalised); the metric averages them over images.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"
#include "eval/decode.h"
#include "eval/detection_decoder.h"

namespace lowbit::eval {

struct DetectionError {
    double score = 0;  // confidence-weighted squared score differences
    double box = 0;    // confidence-weighted relative box differences
    double total() const { return score + box; }
};

// Dense heads: both decoded by decode_dense with the same layout.
Result<DetectionError> dense_detection_error(const DenseDecoded& ref, const DenseDecoded& q);
// End-to-end heads: every row of both outputs (decode_detections with conf 0).
DetectionError e2e_detection_error(const std::vector<Detection>& ref,
                                   const std::vector<Detection>& q);

// Decides the head once from the first (reference) output, as `lowbit eval` does, then compares
// outputs against a reference.
class DetectionComparator {
public:
    DetectionComparator() = default;
    // `head` / `scores` as eval's --head / --scores; expected_classes: 0 when unknown.
    static Result<DetectionComparator> create(const std::string& output_name, const Tensor& first,
                                              int imgsz, HeadKind head, ScoreMode scores,
                                              int expected_classes = 0);
    Status set_reference(const Tensor& output);
    Result<DetectionError> compare(const Tensor& output) const;
    const HeadLayout& layout() const { return layout_; }

private:
    Status decode(const Tensor& output, DenseDecoded& dense, std::vector<Detection>& rows) const;

    HeadLayout layout_;
    int imgsz_ = 0;
    bool sigmoid_ = true;
    DenseDecoded ref_dense_;
    std::vector<Detection> ref_rows_;
};

}  // namespace lowbit::eval
