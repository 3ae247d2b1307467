#include "eval/decode.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/half.h"

namespace lowbit {

namespace {

constexpr int kStrides[3] = {8, 16, 32};
constexpr int kRegMax = 16;  // DFL bins per side

// The output as float32 values: the tensor's own buffer, or a converted copy for float16.
Result<std::vector<float>> to_float32_copy(const Tensor& t) {
    std::vector<float> v(static_cast<size_t>(t.numel()));
    if (t.dtype() == DType::Float16) {
        const uint16_t* p = t.data<uint16_t>();
        for (size_t i = 0; i < v.size(); ++i) v[i] = half_to_float(p[i]);
        return v;
    }
    if (!dtype_is_float(t.dtype())) {
        return unsupported("model output has dtype {}; expected float32 or float16",
                           dtype_name(t.dtype()));
    }
    for (size_t i = 0; i < v.size(); ++i) {
        v[i] = static_cast<float>(tensor_get_f64(t, static_cast<int64_t>(i)));
    }
    return v;
}

// Reads element (channel c, row a) of a 2-D head output in either orientation.
struct View {
    const float* p;
    int64_t channels;
    int64_t rows;
    bool channels_first;
    float at(int64_t c, int64_t a) const {
        return channels_first ? p[c * rows + a] : p[a * channels + c];
    }
};

inline float sigmoid(float x) {
    return 1.0f / (1.0f + std::exp(-x));
}

// Best class per row: max over classes, first maximum wins (np.argmax).
void best_classes(const View& v, int64_t cls_offset, int nc, bool apply_sigmoid,
                  std::vector<float>& best, std::vector<int>& cls) {
    best.assign(static_cast<size_t>(v.rows), -1.0f);
    cls.assign(static_cast<size_t>(v.rows), 0);
    for (int c = 0; c < nc; ++c) {
        for (int64_t a = 0; a < v.rows; ++a) {
            float x = v.at(cls_offset + c, a);
            float p = apply_sigmoid ? sigmoid(x) : x;
            if (p > best[static_cast<size_t>(a)]) {
                best[static_cast<size_t>(a)] = p;
                cls[static_cast<size_t>(a)] = c;
            }
        }
    }
}

// Indices of rows with score >= conf, sorted by descending score (stable), at most topk.
std::vector<int64_t> candidates(const std::vector<float>& score, float conf, int topk) {
    std::vector<int64_t> idx;
    for (size_t a = 0; a < score.size(); ++a) {
        if (score[a] >= conf) idx.push_back(static_cast<int64_t>(a));
    }
    std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) {
        return score[static_cast<size_t>(a)] > score[static_cast<size_t>(b)];
    });
    if (topk > 0 && idx.size() > static_cast<size_t>(topk)) idx.resize(static_cast<size_t>(topk));
    return idx;
}

// Anchor centre (letterbox pixels) and stride of anchor index a: levels 8/16/32 in order, row
// major within a level (seed-spec §5.5 step 4).
void anchor_of(int64_t a, int imgsz, float& ax, float& ay, float& stride) {
    int64_t offset = 0;
    for (int s : kStrides) {
        int64_t g = imgsz / s;
        if (a < offset + g * g) {
            int64_t local = a - offset;
            stride = static_cast<float>(s);
            ax = (static_cast<float>(local % g) + 0.5f) * stride;
            ay = (static_cast<float>(local / g) + 0.5f) * stride;
            return;
        }
        offset += g * g;
    }
    ax = ay = stride = 0;
}

// The box of row a of a DFL or decoded head, xyxy in letterbox pixels. DFL: distance per side =
// expectation of the softmax over 16 bins (max-subtracted), in grid units, times the stride;
// sides ordered left, top, right, bottom. Decoded: cx, cy, w, h.
void row_box(const View& v, HeadKind kind, int64_t a, int imgsz, float box[4]) {
    if (kind == HeadKind::Dfl) {
        float dist[4];
        for (int side = 0; side < 4; ++side) {
            float logits[kRegMax];
            float mx = -INFINITY;
            for (int i = 0; i < kRegMax; ++i) {
                logits[i] = v.at(side * kRegMax + i, a);
                mx = std::max(mx, logits[i]);
            }
            float sum = 0.0f;
            for (int i = 0; i < kRegMax; ++i) {
                logits[i] = std::exp(logits[i] - mx);
                sum += logits[i];
            }
            float e = 0.0f;
            for (int i = 0; i < kRegMax; ++i) e += (logits[i] / sum) * static_cast<float>(i);
            dist[side] = e;
        }
        float ax = 0, ay = 0, st = 0;
        anchor_of(a, imgsz, ax, ay, st);
        box[0] = ax - dist[0] * st;
        box[1] = ay - dist[1] * st;
        box[2] = ax + dist[2] * st;
        box[3] = ay + dist[3] * st;
    } else {
        float cx = v.at(0, a), cy = v.at(1, a), w = v.at(2, a), h = v.at(3, a);
        box[0] = cx - w / 2;
        box[1] = cy - h / 2;
        box[2] = cx + w / 2;
        box[3] = cy + h / 2;
    }
}

}  // namespace

const char* head_kind_name(HeadKind k) {
    switch (k) {
        case HeadKind::Auto: return "auto";
        case HeadKind::Dfl: return "dfl";
        case HeadKind::Decoded: return "decoded";
        case HeadKind::EndToEnd: return "e2e";
        case HeadKind::Query: return "detr";
    }
    return "?";
}

Result<HeadKind> parse_head_kind(const std::string& s) {
    if (s == "auto") return HeadKind::Auto;
    if (s == "dfl" || s == "raw") return HeadKind::Dfl;
    if (s == "decoded" || s == "xywh") return HeadKind::Decoded;
    if (s == "e2e" || s == "end2end" || s == "end-to-end") return HeadKind::EndToEnd;
    if (s == "detr" || s == "query" || s == "rtdetr") return HeadKind::Query;
    return invalid("--head '{}': expected auto, dfl, decoded, e2e or detr", s);
}

std::string HeadLayout::describe() const {
    switch (kind) {
        case HeadKind::Dfl:
            return fmt::format("raw DFL head: {} classes, {} anchors", num_classes, num_rows);
        case HeadKind::Decoded:
            return fmt::format("decoded xywh head: {} classes, {} anchors", num_classes, num_rows);
        case HeadKind::EndToEnd:
            return fmt::format("end-to-end head: {} detections x (x1,y1,x2,y2,score,class)",
                               num_rows);
        case HeadKind::Query:
            return fmt::format("DETR query head: {} queries x (cx,cy,w,h normalized, {} classes)",
                               num_rows, num_classes);
        case HeadKind::Auto: break;
    }
    return "unresolved head";
}

int64_t anchor_count(int imgsz) {
    int64_t n = 0;
    for (int s : kStrides) n += static_cast<int64_t>(imgsz / s) * (imgsz / s);
    return n;
}

Result<HeadLayout> detect_head_layout(const std::string& name, const Shape& shape, int imgsz,
                                      HeadKind requested, int expected_classes) {
    const int64_t n_anchors = anchor_count(imgsz);
    auto unknown = [&](const std::string& why) {
        return invalid(
            "output '{}' has shape {}: {}. Known layouts: raw DFL [1,64+nc,N], decoded "
            "[1,4+nc,N] (N = {} anchors of strides 8/16/32 at --imgsz {}), end-to-end [1,K,6], "
            "DETR queries [1,K,4+nc]; set --imgsz to the model's input size or force a layout with --head",
            name, shape_str(shape), why, n_anchors, imgsz);
    };
    Shape s = shape;
    if (s.size() == 3 && s[0] == 1) s.erase(s.begin());
    if (s.size() != 2) return unknown("expected batch 1 and two more dimensions");
    const int64_t A = s[0], B = s[1];
    HeadLayout l;
    if (requested == HeadKind::EndToEnd ||
        (requested == HeadKind::Auto && B == 6 && A != n_anchors)) {
        if (B != 6) return unknown("an end-to-end output has 6 values per detection");
        l.kind = HeadKind::EndToEnd;
        l.num_rows = A;
        l.channels_first = false;
        return l;
    }
    // DETR queries: [K, 4+nc] with K not the anchor count; auto only when the channel count
    // is 4 + the expected classes (or 84 without annotations' classes).
    const bool query_fits = A != n_anchors && B != n_anchors && B > 4 &&
                            (expected_classes > 0 ? B == 4 + expected_classes : B == 84);
    if (requested == HeadKind::Query || (requested == HeadKind::Auto && query_fits)) {
        if (B <= 4) return unknown("a DETR query head needs more than 4 values per query");
        l.kind = HeadKind::Query;
        l.num_rows = A;
        l.num_classes = static_cast<int>(B - 4);
        l.channels_first = false;
        return l;
    }
    int64_t C = 0;
    if (B == n_anchors && A != n_anchors) {
        C = A;
        l.channels_first = true;
    } else if (A == n_anchors) {
        C = B;
        l.channels_first = false;
    } else {
        return unknown(fmt::format("no dimension equals the anchor count {}", n_anchors));
    }
    l.num_rows = n_anchors;
    HeadKind kind = requested;
    if (kind == HeadKind::Auto) {
        bool dfl = expected_classes > 0 && C == 64 + expected_classes;
        bool dec = expected_classes > 0 && C == 4 + expected_classes;
        if (dfl != dec) {
            kind = dfl ? HeadKind::Dfl : HeadKind::Decoded;
        } else if (C == 144) {
            kind = HeadKind::Dfl;  // the seed's rule: 144 = 64 DFL + 80 classes
        } else if (C == 84) {
            kind = HeadKind::Decoded;  // 84 = 4 xywh + 80 classes
        } else {
            return unknown(
                fmt::format("{} channels fit neither 64+nc (raw DFL) nor 4+nc (decoded) for the {} "
                            "categories of the annotations; pass --head dfl or --head decoded",
                            C, expected_classes));
        }
    }
    const int64_t box_channels = kind == HeadKind::Dfl ? 4 * kRegMax : 4;
    if (C <= box_channels) {
        return unknown(fmt::format("a {} head needs more than {} channels, found {}",
                                   head_kind_name(kind), box_channels, C));
    }
    l.kind = kind;
    l.num_classes = static_cast<int>(C - box_channels);
    return l;
}

bool class_values_are_probabilities(const Tensor& output, const HeadLayout& layout) {
    if (layout.kind != HeadKind::Dfl && layout.kind != HeadKind::Decoded &&
        layout.kind != HeadKind::Query) {
        return false;
    }
    auto vals = to_float32_copy(output);
    if (!vals) return false;
    const int64_t box = layout.kind == HeadKind::Dfl ? 4 * kRegMax : 4;
    View v{vals->data(), box + layout.num_classes, layout.num_rows, layout.channels_first};
    for (int c = 0; c < layout.num_classes; ++c) {
        for (int64_t a = 0; a < v.rows; ++a) {
            float x = v.at(box + c, a);
            if (!(x >= 0.0f && x <= 1.0f)) return false;
        }
    }
    return true;
}

Result<std::vector<Detection>> decode_detections(const Tensor& output, const HeadLayout& layout,
                                                 int imgsz, const DecodeOptions& opts) {
    const int64_t expect_channels = layout.kind == HeadKind::EndToEnd ? 6
                                    : layout.kind == HeadKind::Query  ? 4 + layout.num_classes
                                    : layout.kind == HeadKind::Dfl
                                        ? 4 * kRegMax + layout.num_classes
                                        : 4 + layout.num_classes;
    if (output.numel() != expect_channels * layout.num_rows) {
        return invalid("model output {} does not match the {} chosen from the first image",
                       shape_str(output.shape()), layout.describe());
    }
    const float* data = nullptr;
    std::vector<float> converted;
    if (output.dtype() == DType::Float32) {
        data = output.data<float>();
    } else {
        LOWBIT_ASSIGN(converted, to_float32_copy(output));
        data = converted.data();
    }
    View v{data, expect_channels, layout.num_rows, layout.channels_first};
    std::vector<Detection> cands;

    if (layout.kind == HeadKind::EndToEnd) {
        std::vector<float> score(static_cast<size_t>(v.rows));
        for (int64_t r = 0; r < v.rows; ++r) score[static_cast<size_t>(r)] = v.at(4, r);
        // No NMS: the graph did it. Conf filter, score order, max_det (Ultralytics' end2end).
        std::vector<int64_t> idx = candidates(score, opts.conf, opts.max_det);
        for (int64_t r : idx) {
            Detection d{};
            for (int k = 0; k < 4; ++k) d.box[k] = v.at(k, r);
            d.score = v.at(4, r);
            d.cls = static_cast<int>(v.at(5, r));
            cands.push_back(d);
        }
        return cands;
    }

    const int64_t cls_offset = layout.kind == HeadKind::Dfl ? 4 * kRegMax : 4;
    std::vector<float> best;
    std::vector<int> cls;
    best_classes(v, cls_offset, layout.num_classes, opts.apply_sigmoid, best, cls);
    if (layout.kind == HeadKind::Query) {
        // A set prediction: each query's best class, conf filter, score order, max_det; no NMS.
        const float s = static_cast<float>(imgsz);
        for (int64_t r : candidates(best, opts.conf, opts.max_det)) {
            Detection d{};
            d.score = best[static_cast<size_t>(r)];
            d.cls = cls[static_cast<size_t>(r)];
            float cx = v.at(0, r) * s, cy = v.at(1, r) * s, w = v.at(2, r) * s, h = v.at(3, r) * s;
            d.box[0] = cx - w / 2;
            d.box[1] = cy - h / 2;
            d.box[2] = cx + w / 2;
            d.box[3] = cy + h / 2;
            cands.push_back(d);
        }
        return cands;
    }
    std::vector<int64_t> idx = candidates(best, opts.conf, opts.pre_nms_topk);
    cands.reserve(idx.size());
    for (int64_t a : idx) {
        Detection d{};
        d.score = best[static_cast<size_t>(a)];
        d.cls = cls[static_cast<size_t>(a)];
        row_box(v, layout.kind, a, imgsz, d.box);
        cands.push_back(d);
    }
    return nms_class_aware(cands, opts.iou, opts.max_det);
}

Result<DenseDecoded> decode_dense(const Tensor& output, const HeadLayout& layout, int imgsz,
                                  bool apply_sigmoid) {
    if (layout.kind != HeadKind::Dfl && layout.kind != HeadKind::Decoded) {
        return invalid("decode_dense: {} has no per-anchor rows", layout.describe());
    }
    const int64_t box_ch = layout.kind == HeadKind::Dfl ? 4 * kRegMax : 4;
    const int64_t channels = box_ch + layout.num_classes;
    if (output.numel() != channels * layout.num_rows) {
        return invalid("model output {} does not match the {} chosen from the first image",
                       shape_str(output.shape()), layout.describe());
    }
    LOWBIT_ASSIGN(std::vector<float> vals, to_float32_copy(output));
    View v{vals.data(), channels, layout.num_rows, layout.channels_first};
    DenseDecoded d;
    d.rows = layout.num_rows;
    d.num_classes = layout.num_classes;
    d.boxes.resize(static_cast<size_t>(d.rows) * 4);
    d.scores.resize(static_cast<size_t>(d.rows) * static_cast<size_t>(d.num_classes));
    for (int64_t a = 0; a < d.rows; ++a) {
        row_box(v, layout.kind, a, imgsz, &d.boxes[static_cast<size_t>(a) * 4]);
        float* sc = &d.scores[static_cast<size_t>(a) * static_cast<size_t>(d.num_classes)];
        for (int c = 0; c < d.num_classes; ++c) {
            const float x = v.at(box_ch + c, a);
            sc[c] = apply_sigmoid ? sigmoid(x) : x;
        }
    }
    return d;
}

std::vector<Detection> nms_class_aware(const std::vector<Detection>& cands, float iou_thr,
                                       int max_det) {
    std::vector<Detection> keep;
    const size_t n = cands.size();
    std::vector<float> area(n);
    for (size_t i = 0; i < n; ++i) {
        const float* b = cands[i].box;
        area[i] = std::max(0.0f, b[2] - b[0]) * std::max(0.0f, b[3] - b[1]);
    }
    std::vector<uint8_t> removed(n, 0);
    for (size_t i = 0; i < n; ++i) {
        if (removed[i]) continue;
        keep.push_back(cands[i]);
        if (max_det > 0 && keep.size() >= static_cast<size_t>(max_det)) break;
        const float* a = cands[i].box;
        for (size_t j = i + 1; j < n; ++j) {
            if (removed[j] || cands[j].cls != cands[i].cls) continue;
            const float* b = cands[j].box;
            float w = std::max(0.0f, std::min(a[2], b[2]) - std::max(a[0], b[0]));
            float h = std::max(0.0f, std::min(a[3], b[3]) - std::max(a[1], b[1]));
            float inter = w * h;
            float iou = inter / (area[i] + area[j] - inter + 1e-9f);
            if (iou > iou_thr) removed[j] = 1;
        }
    }
    return keep;
}

}  // namespace lowbit
