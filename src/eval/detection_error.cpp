#include "eval/detection_error.h"

#include <algorithm>
#include <cmath>

namespace lowbit::eval {

namespace {

constexpr double kMinScale = 8.0;  // px: the smallest stride
constexpr double kMatchIou = 0.5;  // end-to-end rows: same class and IoU >= this
constexpr double kBoxCap = 4.0;    // 4 coordinates, each capped at 1

// sum_i min(1, ((q_i - r_i) / s)^2), s from the reference box.
double box_term(const float* r, const float* q) {
    const double w = std::max(0.0f, r[2] - r[0]), h = std::max(0.0f, r[3] - r[1]);
    const double s = std::max(kMinScale, (w + h) / 2);
    double t = 0;
    for (int i = 0; i < 4; ++i) {
        const double d = (static_cast<double>(q[i]) - r[i]) / s;
        t += std::min(1.0, d * d);
    }
    return t;
}

double iou(const float* a, const float* b) {
    const double w = std::max(0.0f, std::min(a[2], b[2]) - std::max(a[0], b[0]));
    const double h = std::max(0.0f, std::min(a[3], b[3]) - std::max(a[1], b[1]));
    const double inter = w * h;
    const double ua = std::max(0.0f, a[2] - a[0]) * std::max(0.0f, a[3] - a[1]);
    const double ub = std::max(0.0f, b[2] - b[0]) * std::max(0.0f, b[3] - b[1]);
    const double u = ua + ub - inter;
    return u > 0 ? inter / u : 0.0;
}

}  // namespace

Result<DetectionError> dense_detection_error(const DenseDecoded& ref, const DenseDecoded& q) {
    if (ref.rows != q.rows || ref.num_classes != q.num_classes) {
        return invalid("detection error: {} rows x {} classes against {} x {}", q.rows,
                       q.num_classes, ref.rows, ref.num_classes);
    }
    DetectionError e;
    const size_t nc = static_cast<size_t>(ref.num_classes);
    for (size_t a = 0; a < static_cast<size_t>(ref.rows); ++a) {
        const float* pr = &ref.scores[a * nc];
        const float* pq = &q.scores[a * nc];
        double mr = 0, mq = 0, sq = 0;
        for (size_t c = 0; c < nc; ++c) {
            mr = std::max(mr, static_cast<double>(pr[c]));
            mq = std::max(mq, static_cast<double>(pq[c]));
            const double d = static_cast<double>(pq[c]) - pr[c];
            sq += d * d;
        }
        const double w = std::max(mr, mq);
        if (w <= 0) continue;
        e.score += w * sq;
        e.box += w * box_term(&ref.boxes[a * 4], &q.boxes[a * 4]);
    }
    return e;
}

DetectionError e2e_detection_error(const std::vector<Detection>& ref,
                                   const std::vector<Detection>& q) {
    std::vector<size_t> ro(ref.size()), qo(q.size());
    for (size_t i = 0; i < ro.size(); ++i) ro[i] = i;
    std::stable_sort(ro.begin(), ro.end(),
                     [&](size_t a, size_t b) { return ref[a].score > ref[b].score; });
    std::vector<char> used(q.size(), 0);
    DetectionError e;
    for (size_t i : ro) {
        const Detection& r = ref[i];
        double best = kMatchIou;
        size_t m = q.size();
        for (size_t j = 0; j < q.size(); ++j) {
            if (used[j] || q[j].cls != r.cls) continue;
            const double o = iou(r.box, q[j].box);
            if (o >= best) {
                if (m < q.size() && o == best) continue;  // first of equal IoUs
                best = o;
                m = j;
            }
        }
        const double pr = std::max(0.0f, r.score);
        if (m == q.size()) {
            e.score += pr * pr * pr;
            e.box += pr * kBoxCap;
            continue;
        }
        used[m] = 1;
        const double pq = std::max(0.0f, q[m].score);
        const double w = std::max(pr, pq);
        e.score += w * (pq - pr) * (pq - pr);
        e.box += w * box_term(r.box, q[m].box);
    }
    for (size_t j = 0; j < q.size(); ++j) {
        if (used[j]) continue;
        const double pq = std::max(0.0f, q[j].score);
        e.score += pq * pq * pq;
        e.box += pq * kBoxCap;
    }
    return e;
}

Result<DetectionComparator> DetectionComparator::create(const std::string& output_name,
                                                        const Tensor& first, int imgsz,
                                                        HeadKind head, ScoreMode scores,
                                                        int expected_classes) {
    DetectionComparator c;
    c.imgsz_ = imgsz;
    LOWBIT_ASSIGN(c.layout_,
                  detect_head_layout(output_name, first.shape(), imgsz, head, expected_classes));
    if (c.layout_.kind == HeadKind::EndToEnd) {
        c.sigmoid_ = false;
    } else if (scores == ScoreMode::Auto) {
        c.sigmoid_ = !class_values_are_probabilities(first, c.layout_);
    } else {
        c.sigmoid_ = scores == ScoreMode::Logits;
    }
    return c;
}

Status DetectionComparator::decode(const Tensor& output, DenseDecoded& dense,
                                   std::vector<Detection>& rows) const {
    if (layout_.kind == HeadKind::EndToEnd) {
        DecodeOptions o;
        o.conf = -INFINITY;  // every row: a row below any threshold still has a score to lose
        o.max_det = static_cast<int>(layout_.num_rows);
        o.apply_sigmoid = false;
        LOWBIT_ASSIGN(rows, decode_detections(output, layout_, imgsz_, o));
        return Status::ok();
    }
    LOWBIT_ASSIGN(dense, decode_dense(output, layout_, imgsz_, sigmoid_));
    return Status::ok();
}

Status DetectionComparator::set_reference(const Tensor& output) {
    return decode(output, ref_dense_, ref_rows_);
}

Result<DetectionError> DetectionComparator::compare(const Tensor& output) const {
    DenseDecoded dense;
    std::vector<Detection> rows;
    LOWBIT_TRY(decode(output, dense, rows));
    if (layout_.kind == HeadKind::EndToEnd) return e2e_detection_error(ref_rows_, rows);
    return dense_detection_error(ref_dense_, dense);
}

}  // namespace lowbit::eval
