#include "quant/sensitivity.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <numeric>
#include <unordered_map>

#include "core/progress.h"
#include "data/coco.h"
#include "data/letterbox.h"
#include "eval/class_map.h"
#include "eval/cocoeval.h"
#include "eval/decode.h"
#include "eval/latency.h"
#include "runtime/executor.h"
#include "runtime/incremental_runner.h"
#include "runtime/kernels/cpu/quant_conv.h"
#include "runtime/model_info.h"
#include "runtime/task_pool.h"

namespace lowbit::quant {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return percentile_linear(v, 50);
}

// v clamped to [-128, 127] and rounded half to even, as a float: an INT8 code (clamping before
// rounding is the same for integer bounds; the 1.5 * 2^23 trick is exact for |v| < 2^22 in the
// default rounding mode, like nearbyint).
inline float round_int8_value(float v) {
    constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23
    v = v < -128.0f ? -128.0f : (v > 127.0f ? 127.0f : v);
    return (v + kMagic) - kMagic;
}

// v rounded to the nearest FP8 E4M3FN value (saturating at 448), as a float.
inline float round_e4m3fn_value(float v) {
    constexpr float kSubMagic = 16384.0f;    // 2^14: float spacing 2^-9 around it
    constexpr float kMinNormal = 0.015625f;  // 2^-6
    const uint32_t bits = std::bit_cast<uint32_t>(v);
    const uint32_t sign = bits & 0x80000000u;
    float a = std::bit_cast<float>(bits & 0x7FFFFFFFu);
    a = a > 448.0f ? 448.0f : a;  // NaN stays NaN
    uint32_t ab = std::bit_cast<uint32_t>(a);
    ab = (ab + 0x7FFFFu + ((ab >> 20) & 1u)) & 0xFFF00000u;
    const float normal = std::bit_cast<float>(ab);
    const float sub = (a + kSubMagic) - kSubMagic;
    const float r = a >= kMinNormal ? normal : sub;
    return std::bit_cast<float>(std::bit_cast<uint32_t>(r) | sign);
}

}  // namespace

// Branch-free forms of the executor's QuantizeLinear -> DequantizeLinear so that the loops
// vectorize (the sweep fake-quantizes millions of values per image):
//  - INT8: v = x / s clamped to [-128, 127] and rounded half to even (round_int8_value), times s.
//  - FP8 E4M3FN: |v| clamped to 448 (saturation), then rounded to 3 mantissa bits half to even
//    on the float's bits for normals (|v| >= 2^-6), or to a multiple of 2^-9 by the 2^14 trick
//    for subnormals; sign restored, times s. Equal to round_to_e4m3 (tested).
void fake_quantize_into(const float* x, float* y, int64_t n, float s, QuantMode mode) {
    if (mode == QuantMode::Int8) {
        for (int64_t i = 0; i < n; ++i) y[i] = round_int8_value(x[i] / s) * s;
        return;
    }
    for (int64_t i = 0; i < n; ++i) y[i] = round_e4m3fn_value(x[i] / s) * s;
}

Tensor fake_quantize(const Tensor& x, float s, QuantMode mode) {
    Tensor y(DType::Float32, x.shape());
    fake_quantize_into(x.data<float>(), y.data<float>(), x.numel(), s, mode);
    return y;
}

namespace {

// A weight as its QuantizeLinear/DequantizeLinear pair in the quantized model yields it.
Tensor fake_quantize_weight(const Tensor& w, int64_t axis, QuantMode mode) {
    std::vector<float> scales;
    const Tensor q = quantize_weight(w, axis, mode, DType::Float32, &scales);
    const Shape& shape = w.shape();
    int64_t inner = 1;
    for (size_t i = static_cast<size_t>(std::max<int64_t>(axis, 0)) + 1;
         axis >= 0 && i < shape.size(); ++i) {
        inner *= shape[i];
    }
    const int64_t channels = axis >= 0 ? shape[static_cast<size_t>(axis)] : 1;
    Tensor y(DType::Float32, shape);
    float* py = y.data<float>();
    for (int64_t i = 0; i < w.numel(); ++i) {
        const float s = scales[static_cast<size_t>(axis >= 0 ? (i / inner) % channels : 0)];
        const float v = mode == QuantMode::Int8
                            ? static_cast<float>(q.data<int8_t>()[i])
                            : fp8_to_float(q.data<uint8_t>()[i], DType::Float8E4M3FN);
        py[i] = v * s;
    }
    return y;
}

// What quantizing one node means: fake-quantized activation inputs and replacement weights.
struct NodeQuant {
    std::vector<std::pair<size_t, float>> activations;  // (input index, stored scale)
    std::vector<Tensor> buffers;  // per activation: reused output (the executor reads it only
                                  // while the node runs)
};

struct SumSquares {
    double signal = 0, noise = 0;
};

// sum(a^2) and sum((b - a)^2) in double, over 8 independent lanes so that the loop vectorizes
// (a single double accumulator is a serial dependency chain).
SumSquares sum_squares(const float* a, const float* b, int64_t n) {
    constexpr int kLanes = 8;
    double sg[kLanes] = {}, nz[kLanes] = {};
    int64_t e = 0;
    for (; e + kLanes <= n; e += kLanes) {
        for (int j = 0; j < kLanes; ++j) {
            const double x = a[e + j];
            const double d = static_cast<double>(b[e + j]) - x;
            sg[j] += x * x;
            nz[j] += d * d;
        }
    }
    SumSquares r;
    for (; e < n; ++e) {
        const double d = static_cast<double>(b[e]) - a[e];
        r.signal += static_cast<double>(a[e]) * a[e];
        r.noise += d * d;
    }
    for (int j = 0; j < kLanes; ++j) {
        r.signal += sg[j];
        r.noise += nz[j];
    }
    return r;
}

// The quantized values of float32 data stored NHWC, as QuantConv reads them: INT8 the codes
// q = saturate(round_half_even(x / s)), FP8 the E4M3FN value of x / s as bfloat16 bits (exact:
// its low 16 float bits are zero); fake_quantize_into's output is that value times s. `x` holds
// c channels of hw pixels, stored NHWC or plain (NCHW, transposed here).
void quantize_values_nhwc(const float* x, bool x_nhwc, int64_t c, int64_t hw, float s,
                          QuantMode mode, void* out) {
    // One loop per mode and layout, so that each vectorizes.
    auto run = [&](auto put) {
        if (x_nhwc) {
            for (int64_t i = 0; i < c * hw; ++i) put(i, x[i]);
            return;
        }
        for (int64_t ch = 0; ch < c; ++ch) {
            for (int64_t p = 0; p < hw; ++p) put(p * c + ch, x[ch * hw + p]);
        }
    };
    if (mode == QuantMode::Int8) {
        auto* q = static_cast<int8_t*>(out);
        run([q, s](int64_t i, float x) {
            q[i] = static_cast<int8_t>(static_cast<int32_t>(round_int8_value(x / s)));
        });
    } else {
        auto* q = static_cast<uint16_t*>(out);
        run([q, s](int64_t i, float x) {
            q[i] = static_cast<uint16_t>(std::bit_cast<uint32_t>(round_e4m3fn_value(x / s)) >> 16);
        });
    }
}

// Probe work buffers are cut into chunks of this many floats (a few KiB, in L1).
constexpr size_t kProbeChunk = 2048;

// sum(y^2) and sum((fq(y) - y)^2): the quantized output of an op that only picks values of its
// (fake-quantized) input. `buf`: kProbeChunk floats.
SumSquares sum_squares_select(const float* y, int64_t n, float s, QuantMode mode, float* buf) {
    SumSquares r;
    for (int64_t e = 0; e < n; e += static_cast<int64_t>(kProbeChunk)) {
        const int64_t len = std::min<int64_t>(static_cast<int64_t>(kProbeChunk), n - e);
        fake_quantize_into(y + e, buf, len, s, mode);
        const SumSquares c = sum_squares(y + e, buf, len);
        r.signal += c.signal;
        r.noise += c.noise;
    }
    return r;
}

// sum(y^2) and sum((fq(a) + fq(b) - y)^2) for y = a + b (same shapes and storage); an input
// with scale 0 is not quantized. `buf`: 3 * kProbeChunk floats.
SumSquares sum_squares_add(const float* y, const float* a, const float* b, int64_t n,
                           const std::array<float, 2>& scale, QuantMode mode, float* buf) {
    SumSquares r;
    float* qa = buf;
    float* qb = buf + kProbeChunk;
    float* sum = buf + 2 * kProbeChunk;
    for (int64_t e = 0; e < n; e += static_cast<int64_t>(kProbeChunk)) {
        const int64_t len = std::min<int64_t>(static_cast<int64_t>(kProbeChunk), n - e);
        const float* pa = a + e;
        const float* pb = b + e;
        if (scale[0] > 0) {
            fake_quantize_into(pa, qa, len, scale[0], mode);
            pa = qa;
        }
        if (scale[1] > 0) {
            fake_quantize_into(pb, qb, len, scale[1], mode);
            pb = qb;
        }
        for (int64_t i = 0; i < len; ++i) sum[i] = pa[i] + pb[i];
        const SumSquares c = sum_squares(y + e, sum, len);
        r.signal += c.signal;
        r.noise += c.noise;
    }
    return r;
}

// sum(y^2) and sum((yq - y)^2) of a conv output, yq = acc * scale + bias per channel: `acc`
// (QuantConv's sums, NHWC, m channels of hw pixels; turned into yq in place) against `y` stored
// NHWC or plain. An empty bias is zero.
SumSquares sum_squares_conv(const float* y, bool y_nhwc, float* acc,
                            const std::vector<float>& scale, const std::vector<float>& bias,
                            int64_t m, int64_t hw) {
    float* yq = acc;
    const float* sc = scale.data();
    for (int64_t p = 0; p < hw; ++p) {
        float* row = yq + p * m;
        if (bias.empty()) {
            for (int64_t ch = 0; ch < m; ++ch) row[ch] *= sc[ch];
        } else {
            const float* b = bias.data();
            for (int64_t ch = 0; ch < m; ++ch) row[ch] = row[ch] * sc[ch] + b[ch];
        }
    }
    if (y_nhwc) return sum_squares(y, yq, m * hw);
    SumSquares r;
    for (int64_t ch = 0; ch < m; ++ch) {
        for (int64_t p = 0; p < hw; ++p) {
            const double a = y[ch * hw + p];
            const double d = static_cast<double>(yq[p * m + ch]) - a;
            r.signal += a * a;
            r.noise += d * d;
        }
    }
    return r;
}

struct OutputError {
    double mse = 0;
    double cosine = 0;  // 1 - cosine similarity
};

// Float outputs of `a` against `ref`, concatenated.
OutputError compare_outputs(const std::vector<Tensor>& a, const std::vector<Tensor>& ref) {
    double sq = 0, dot = 0, na = 0, nb = 0;
    int64_t count = 0;
    for (size_t k = 0; k < ref.size() && k < a.size(); ++k) {
        if (ref[k].dtype() != DType::Float32 || a[k].dtype() != DType::Float32) continue;
        const float* x = a[k].data<float>();
        const float* y = ref[k].data<float>();
        const int64_t n = ref[k].numel();
        for (int64_t i = 0; i < n; ++i) {
            const double d = static_cast<double>(x[i]) - y[i];
            sq += d * d;
            dot += static_cast<double>(x[i]) * y[i];
            na += static_cast<double>(x[i]) * x[i];
            nb += static_cast<double>(y[i]) * y[i];
        }
        count += n;
    }
    OutputError e;
    e.mse = count ? sq / static_cast<double>(count) : 0.0;
    if (na > 0 && nb > 0)
        e.cosine = 1.0 - dot / std::sqrt(na * nb);
    else
        e.cosine = na == nb ? 0.0 : 1.0;
    return e;
}

// Detections of one image for the map metric, as `lowbit eval` makes them.
struct MapDecoder {
    HeadLayout layout;
    ClassMap cmap;
    DecodeOptions dec;
    int imgsz = 0;

    Status decode(const Tensor& out, const Letterbox& lb, int64_t image_id,
                  std::vector<CocoAnnotation>& dets) const {
        LOWBIT_ASSIGN(std::vector<Detection> ds, decode_detections(out, layout, imgsz, dec));
        for (Detection& d : ds) {
            const int64_t cat = cmap.category(d.cls);
            if (cat < 0) continue;
            unletterbox_xyxy(lb, d.box);
            if (!std::isfinite(d.box[0]) || !std::isfinite(d.box[1]) || !std::isfinite(d.box[2]) ||
                !std::isfinite(d.box[3]) || !std::isfinite(d.score)) {
                continue;  // a perturbed model may diverge; such boxes count as missed
            }
            CocoAnnotation a;
            a.id = static_cast<int64_t>(dets.size()) + 1;
            a.image_id = image_id;
            a.category_id = cat;
            a.bbox = {d.box[0], d.box[1], std::max(0.0f, d.box[2] - d.box[0]),
                      std::max(0.0f, d.box[3] - d.box[1])};
            a.area = a.bbox[2] * a.bbox[3];
            a.score = d.score;
            dets.push_back(a);
        }
        return Status::ok();
    }
};

// One compared image: the model input, and for map its letterbox and COCO id.
struct Sample {
    Tensor input;
    Letterbox lb;
    int64_t image_id = 0;
};

}  // namespace

Result<SensitivityMetric> parse_sensitivity_metric(const std::string& s) {
    if (s == "output-mse" || s == "mse") return SensitivityMetric::OutputMse;
    if (s == "cosine") return SensitivityMetric::Cosine;
    if (s == "local-sqnr" || s == "sqnr") return SensitivityMetric::LocalSqnr;
    if (s == "map") return SensitivityMetric::Map;
    return invalid("--metric '{}': expected output-mse, cosine, local-sqnr or map", s);
}

const char* sensitivity_metric_name(SensitivityMetric m) {
    switch (m) {
        case SensitivityMetric::OutputMse: return "output-mse";
        case SensitivityMetric::Cosine: return "cosine";
        case SensitivityMetric::LocalSqnr: return "local-sqnr";
        case SensitivityMetric::Map: return "map";
    }
    return "?";
}

std::string node_scope(const std::string& name) {
    auto slash = name.rfind('/');
    if (slash == std::string::npos || slash == 0) return name;
    std::string scope = name.substr(0, slash);
    const std::string conv = "/conv";
    if (scope.size() > conv.size() &&
        scope.compare(scope.size() - conv.size(), conv.size(), conv) == 0) {
        scope.resize(scope.size() - conv.size());
    }
    return scope;
}

Result<SensitivityReport> run_sensitivity(const Model& input, calib::CalibSource& source,
                                          const SensitivityOptions& opts) {
    const QuantMode mode = opts.quant.placement.mode;
    const SensitivityMetric metric = opts.metric;
    if (opts.all_but_one && metric == SensitivityMetric::LocalSqnr) {
        return invalid(
            "--all-but-one measures the model outputs; local-sqnr is a per-node signal (use "
            "output-mse, cosine or map with --all-but-one)");
    }
    if (opts.naive && metric == SensitivityMetric::LocalSqnr) {
        return invalid("--naive compares cone runs with full passes; local-sqnr has no cones");
    }
    if (opts.images <= 0) return invalid("--images {}: must be at least 1", opts.images);
    if (opts.quant.zero_point) return invalid("sensitivity uses symmetric quantization only");

    SensitivityReport rep;
    // Calibration, placement and scales exactly as `quantize` computes them.
    QuantizeOptions qo = opts.quant;
    qo.high_precision = DType::Float32;
    qo.dq_only = false;
    LOWBIT_ASSIGN(QuantizeResult qr, quantize_model(input, &source, qo));
    rep.calib_seconds = qr.calib_seconds;
    rep.calib_samples = qr.samples;
    rep.method = calib::calib_method_name(qo.method);
    for (const auto& n : qr.notes) {
        // The quantized model's opset is no concern here: it is never written.
        if (n.find("opset") == std::string::npos) rep.notes.push_back(n);
    }
    const Placement& pl = qr.placement;
    if (pl.selected.empty()) {
        return invalid("no node is quantizable with these options (placement selected none)");
    }

    // The same prepared graph the placement indices refer to.
    LOWBIT_ASSIGN(Model m, prepare_float_model(input));
    const Graph& g = m.graph;
    ExecutorOptions eo;
    eo.n_threads = opts.n_threads;
    eo.profile = qo.run.profile;
    eo.conv_winograd = qo.run.conv_winograd;
    eo.input_shapes = qo.input_shapes;
    const ValueInfo* image_input = nullptr;
    for (const auto& vi : g.inputs) {
        if (!g.initializer(vi.name)) {
            image_input = &vi;
            break;
        }
    }
    if (!image_input) return invalid("the model has no runtime input");
    if (!eo.input_shapes.count(image_input->name)) {
        bool symbolic = !image_input->has_shape;
        for (const auto& d : image_input->dims) symbolic = symbolic || !d.is_fixed();
        if (symbolic) {
            Shape s{1};
            s.insert(s.end(), source.sample_shape().begin(), source.sample_shape().end());
            eo.input_shapes[image_input->name] = s;
        }
    }
    auto created = IncrementalRunner::create(m, eo);
    if (!created) return created.status().with_context("planning the model for sensitivity");
    std::unique_ptr<IncrementalRunner> ex = std::move(created).value();
    const TensorDesc& in_desc = ex->inputs().at(0);
    if (ex->inputs().size() != 1 || in_desc.dtype != DType::Float32) {
        return invalid("sensitivity feeds models with one float32 input; this one has {} ({})",
                       ex->inputs().size(), dtype_name(in_desc.dtype));
    }
    if (in_desc.shape.empty() || in_desc.shape[0] != 1) {
        return invalid("input '{}' has shape {}; sensitivity runs batch 1", in_desc.name,
                       shape_str(in_desc.shape));
    }

    // What quantizing each node means.
    std::vector<NodeQuant> nq(g.nodes.size());
    for (size_t a = 0; a < pl.activations.size(); ++a) {
        const float s = stored_scale(qr.params[a].scale, DType::Float32);
        for (const auto& [node, idx] : pl.activations[a].edges) {
            nq[node].activations.push_back({idx, s});
        }
    }
    for (const WeightQdq& wq : pl.weights) {
        const Tensor* w = g.initializer(wq.tensor);
        if (!w || w->dtype() != DType::Float32) {
            return invalid("weight '{}' of {} is not a float32 initializer", wq.tensor,
                           g.nodes[wq.node].describe());
        }
    }
    // Fake quantization is per tensor and elementwise, so the override works on tensors as
    // stored (TensorView::Stored: no layout conversions); weights are constants, always plain.
    // local-sqnr reads every input from the float32 run, so a tensor consumed by several
    // quantizable nodes (shared Q/DQ) is fake-quantized once per image: `shared_fq` maps
    // (source data, scale) to the first node's buffer; cleared before every image. Cone runs
    // (the other metrics) read fresh tensors from a scratch arena whose addresses repeat, so
    // they never use it.
    const bool share_fq = metric == SensitivityMetric::LocalSqnr;
    std::map<std::pair<const void*, float>, Tensor> shared_fq;
    auto override_fn = [&nq, &shared_fq, share_fq, mode](size_t idx, const Node& node,
                                                         std::vector<Tensor>& ins) -> Status {
        NodeQuant& q = nq[idx];
        q.buffers.resize(q.activations.size());
        for (size_t a = 0; a < q.activations.size(); ++a) {
            const auto [i, s] = q.activations[a];
            if (i >= ins.size() || ins[i].empty()) continue;
            if (ins[i].dtype() != DType::Float32) {
                return unsupported("{}: input {} is {}; sensitivity fake-quantizes float32 only",
                                   node.describe(), i, dtype_name(ins[i].dtype()));
            }
            Tensor& buf = q.buffers[a];
            if (buf.shape() != ins[i].shape() || buf.dtype() != DType::Float32) {
                buf = Tensor(DType::Float32, ins[i].shape());
            }
            const std::pair<const void*, float> key{ins[i].data<float>(), s};
            if (share_fq) {
                auto hit = shared_fq.find(key);
                if (hit != shared_fq.end() && hit->second.shape() == ins[i].shape()) {
                    ins[i] = hit->second;
                    continue;
                }
            }
            fake_quantize_into(ins[i].data<float>(), buf.data<float>(), ins[i].numel(), s, mode);
            if (share_fq) shared_fq[key] = buf;
            ins[i] = buf;
        }
        return Status::ok();
    };

    // The quantizable nodes, in plan order (a deterministic order for ties).
    std::vector<size_t> position(g.nodes.size(), SIZE_MAX);
    for (size_t k = 0; k < ex->plan_order().size(); ++k) position[ex->plan_order()[k]] = k;
    std::vector<size_t> nodes;
    for (const auto& [idx, rule] : pl.selected) nodes.push_back(idx);
    std::sort(nodes.begin(), nodes.end());
    nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
    for (size_t n : nodes) {
        if (position[n] == SIZE_MAX) {
            return invalid("node {} is quantizable but has no run-time step (folded at load)",
                           g.nodes[n].describe());
        }
    }
    std::sort(nodes.begin(), nodes.end(),
              [&](size_t a, size_t b) { return position[a] < position[b]; });
    const size_t N = nodes.size();
    std::vector<std::vector<size_t>> cones(N);
    for (size_t k = 0; k < N; ++k) cones[k] = ex->downstream_nodes({nodes[k]});
    std::vector<std::vector<size_t>> active(N);  // quantized nodes when measuring node k
    for (size_t k = 0; k < N; ++k) {
        if (opts.all_but_one) {
            for (size_t j = 0; j < N; ++j) {
                if (j != k) active[k].push_back(nodes[j]);
            }
        } else {
            active[k] = {nodes[k]};
        }
    }

    // local-sqnr without a run of the node through the executor ("probes"), where the quantized
    // output can be had more cheaply and is the same up to float rounding:
    //  - Conv: a Conv whose only quantized activation is its data input runs on oneDNN's exact
    //    low-precision kernels (cpu::QuantConv: INT8 codes, or FP8 values as bfloat16). Its
    //    input is quantized once per image (shared by the Convs reading it at the same scale);
    //    scales and bias are applied with the sums.
    //  - Select: MaxPool and nearest Resize only pick input values, and fake quantization is
    //    monotonic, so quantizing the input and then picking equals picking and then quantizing:
    //    the quantized output is the fake-quantized float32 output, bit for bit.
    //  - Add (same shapes and storage, no broadcast): fake-quantized inputs added elementwise,
    //    as the executor's kernel adds them.
    // Probes read only the float32 pass and write only their own sums, so they run as pool
    // tasks over the nodes. Other nodes keep the run through the executor.
    struct CodeInput {
        std::string x;
        float scale = 0;
        int64_t c = 0, hw = 0;
        bool nhwc = false;           // x stored channels-last
        std::vector<uint8_t> codes;  // int8 codes or bfloat16 bits
    };
    enum class ProbeKind { Conv, Select, Add };
    struct Probe {
        ProbeKind kind = ProbeKind::Select;
        // Conv
        std::unique_ptr<cpu::QuantConv> conv;
        size_t input = 0;                // index into code_inputs
        std::vector<float> scale, bias;  // per output channel
        int64_t m = 0, ohw = 0;
        bool y_nhwc = false;  // the output stored channels-last
        // Select: the input's scale; Add: each input's scale (0: not quantized)
        float in_scale = 0;
        std::array<std::string, 2> add_in;
        std::array<float, 2> add_scale{0.0f, 0.0f};
    };
    std::vector<CodeInput> code_inputs;
    std::vector<std::unique_ptr<Probe>> probes(N);  // null: a run through the executor
    std::vector<size_t> probed;                     // k with a probe
    int64_t n_conv = 0;
    std::string conv_impl, conv_refusal;
    if (metric == SensitivityMetric::LocalSqnr && opts.local_probes) {
        std::map<size_t, const WeightQdq*> weight_of;
        for (const WeightQdq& wq : pl.weights) {
            if (wq.input == 1) weight_of[wq.node] = &wq;
        }
        auto float_desc = [&](const std::string& name) -> const TensorDesc* {
            const TensorDesc* d = name.empty() ? nullptr : ex->tensor_desc(name);
            return d && d->dtype == DType::Float32 ? d : nullptr;
        };
        std::map<std::pair<std::string, float>, size_t> slot_of;
        for (size_t k = 0; k < N; ++k) {
            const Node& node = g.nodes[nodes[k]];
            const NodeQuant& q = nq[nodes[k]];
            const TensorDesc* yd = node.outputs.size() == 1 ? float_desc(node.outputs[0]) : nullptr;
            if (!yd || node.inputs.empty()) continue;
            auto pr = std::make_unique<Probe>();
            const bool only_input0 = q.activations.size() == 1 && q.activations[0].first == 0;
            if ((node.op_type == "MaxPool" ||
                 (node.op_type == "Resize" && node.attr_string("mode", "nearest") == "nearest")) &&
                only_input0 && float_desc(node.inputs[0])) {
                pr->kind = ProbeKind::Select;
                pr->in_scale = q.activations[0].second;
            } else if (node.op_type == "Add" && node.inputs.size() == 2 && !q.activations.empty()) {
                bool ok = true;
                for (size_t i = 0; i < 2; ++i) {
                    const TensorDesc* d = float_desc(node.inputs[i]);
                    ok = ok && d && d->shape == yd->shape &&
                         ex->stored_channels_last(node.inputs[i]) ==
                             ex->stored_channels_last(node.outputs[0]);
                    pr->add_in[i] = node.inputs[i];
                }
                for (const auto& [i, sc] : q.activations) {
                    if (i < 2) pr->add_scale[i] = sc;
                }
                if (!ok) continue;
                pr->kind = ProbeKind::Add;
            } else if (node.op_type == "Conv" && only_input0 && weight_of.count(nodes[k])) {
                const WeightQdq& wq = *weight_of.at(nodes[k]);
                const TensorDesc* xd = float_desc(node.inputs[0]);
                const Tensor* w = g.initializer(wq.tensor);
                const bool has_bias = node.inputs.size() > 2 && !node.inputs[2].empty();
                const Tensor* b = has_bias ? g.initializer(node.inputs[2]) : nullptr;
                if (!xd || !w || xd->shape.size() != 4 || yd->shape.size() != 4 ||
                    (has_bias &&
                     (!b || b->dtype() != DType::Float32 || b->numel() != yd->shape[1]))) {
                    continue;
                }
                std::vector<float> ws;
                const Tensor codes = quantize_weight(*w, wq.axis, mode, DType::Float32, &ws);
                const int64_t m = yd->shape[1];
                if (ws.size() != 1 && static_cast<int64_t>(ws.size()) != m) continue;
                const float sx = q.activations[0].second;
                pr->scale.resize(static_cast<size_t>(m));
                for (int64_t c = 0; c < m; ++c) {
                    pr->scale[static_cast<size_t>(c)] =
                        sx * ws[ws.size() == 1 ? 0 : static_cast<size_t>(c)];
                }
                Tensor values = codes;
                if (mode == QuantMode::Fp8) {
                    values = Tensor(DType::Float32, codes.shape());
                    for (int64_t e = 0; e < codes.numel(); ++e) {
                        values.data<float>()[e] =
                            fp8_to_float(codes.data<uint8_t>()[e], DType::Float8E4M3FN);
                    }
                }
                auto conv =
                    cpu::QuantConv::create(node, xd->shape, yd->shape, values,
                                           mode == QuantMode::Int8 ? cpu::QuantConvValues::Int8
                                                                   : cpu::QuantConvValues::Fp8);
                if (!conv) {
                    if (conv_refusal.empty()) conv_refusal = conv.status().message();
                    continue;
                }
                if (conv_impl.find((*conv)->impl()) == std::string::npos) {
                    conv_impl += (conv_impl.empty() ? "" : ", ") + (*conv)->impl();
                }
                pr->kind = ProbeKind::Conv;
                pr->conv = std::move(conv).value();
                if (b) pr->bias.assign(b->data<float>(), b->data<float>() + b->numel());
                pr->m = m;
                pr->ohw = yd->shape[2] * yd->shape[3];
                pr->y_nhwc = ex->stored_channels_last(node.outputs[0]);
                const auto key = std::make_pair(node.inputs[0], sx);
                auto slot = slot_of.find(key);
                if (slot == slot_of.end()) {
                    CodeInput ci;
                    ci.x = node.inputs[0];
                    ci.scale = sx;
                    ci.c = xd->shape[1];
                    ci.hw = xd->shape[2] * xd->shape[3];
                    ci.nhwc = ex->stored_channels_last(ci.x);
                    ci.codes.resize(static_cast<size_t>(ci.c * ci.hw) *
                                    (mode == QuantMode::Int8 ? 1 : 2));
                    slot = slot_of.emplace(key, code_inputs.size()).first;
                    code_inputs.push_back(std::move(ci));
                }
                pr->input = slot->second;
                ++n_conv;
            } else {
                continue;
            }
            probes[k] = std::move(pr);
            probed.push_back(k);
        }
        rep.cost.quant_kernel_nodes = n_conv;
        if (n_conv > 0) {
            rep.notes.push_back(fmt::format(
                "local-sqnr: {} of {} nodes (Convs) ran on oneDNN's {} kernels [{}] (equal to "
                "the float simulation up to float rounding)",
                n_conv, N, mode == QuantMode::Int8 ? "int8" : "bf16 (FP8 values)", conv_impl));
        } else if (!conv_refusal.empty()) {
            rep.notes.push_back(fmt::format(
                "local-sqnr: no quantized conv kernel here, Convs ran the float simulation ({})",
                conv_refusal));
        }
    }
    // Fake-quantized weights are prepared once, as a constant variant of each node that runs
    // through the executor (a Conv probe holds its own quantized weights).
    std::vector<char> own_weights(g.nodes.size(), 0);
    for (size_t k : probed) own_weights[nodes[k]] = probes[k]->kind == ProbeKind::Conv;
    for (const WeightQdq& wq : pl.weights) {
        if (own_weights[wq.node]) continue;
        LOWBIT_TRY(ex->add_constant_variant(
            wq.node, wq.input, fake_quantize_weight(*g.initializer(wq.tensor), wq.axis, mode)));
    }
    TaskPool pool(probed.empty() ? 1 : opts.n_threads);
    std::vector<std::vector<float>> probe_out(static_cast<size_t>(pool.size()));
    for (size_t k : probed) {
        const Probe& pr = *probes[k];
        const size_t need =
            pr.kind == ProbeKind::Conv ? static_cast<size_t>(pr.m * pr.ohw) : 3 * kProbeChunk;
        for (auto& buf : probe_out) buf.resize(std::max(buf.size(), need));
    }

    // Compared samples: calibration images, or for map the validation subset.
    std::vector<Sample> samples;
    MapDecoder mapdec;
    CocoDataset gt;
    std::vector<int64_t> val_ids;
    const size_t per_sample = static_cast<size_t>(shape_numel(source.sample_shape()));
    if (static_cast<size_t>(shape_numel(in_desc.shape)) != per_sample) {
        return invalid("input '{}' is {} but calibration samples are {}", in_desc.name,
                       shape_str(in_desc.shape), shape_str(source.sample_shape()));
    }
    int64_t n_images = 0;
    if (metric == SensitivityMetric::Map) {
        const EvalOptions& ev = opts.eval;
        if (in_desc.shape.size() != 4 || in_desc.shape[2] != in_desc.shape[3]) {
            return invalid("map needs a square image input; '{}' is {}", in_desc.name,
                           shape_str(in_desc.shape));
        }
        mapdec.imgsz = static_cast<int>(in_desc.shape[2]);
        LOWBIT_ASSIGN(gt, load_coco_gt(ev.ann_path));
        for (const CocoImage& im : gt.images) val_ids.push_back(im.id);
        std::sort(val_ids.begin(), val_ids.end());
        if (ev.max_images > 0 && val_ids.size() > static_cast<size_t>(ev.max_images)) {
            val_ids.resize(static_cast<size_t>(ev.max_images));
        }
        if (val_ids.empty()) return invalid("{}: no images", ev.ann_path);
        n_images = static_cast<int64_t>(val_ids.size());
    } else {
        n_images = std::min<int64_t>(opts.images, source.size());
    }
    rep.images = n_images;
    auto load_sample = [&](int64_t i) -> Result<Sample> {
        Sample s;
        s.input = Tensor(DType::Float32, in_desc.shape);
        if (metric != SensitivityMetric::Map) {
            LOWBIT_TRY(source.read(i, s.input.data<float>()));
            return s;
        }
        const int64_t id = val_ids[static_cast<size_t>(i)];
        const CocoImage* im = nullptr;
        for (const CocoImage& c : gt.images) {
            if (c.id == id) im = &c;
        }
        const std::string path =
            (std::filesystem::path(opts.eval.images_dir) / im->file_name).string();
        LOWBIT_ASSIGN(s.lb, load_letterboxed(path, mapdec.imgsz, s.input.data<float>()));
        s.image_id = id;
        return s;
    };

    // Per-node accumulators.
    std::vector<double> mse(N, 0.0), cosd(N, 0.0), signal(N, 0.0), noise(N, 0.0);
    std::vector<std::vector<CocoAnnotation>> dets(N);
    std::vector<CocoAnnotation> dets_fp32, dets_allq;
    double all_mse = 0, all_cos = 0;
    bool map_ready = false;
    std::vector<double> full_ms;
    std::vector<std::string> first_output(N);
    for (size_t k = 0; k < N; ++k) first_output[k] = g.nodes[nodes[k]].outputs.at(0);

    Progress progress("sensitivity", n_images * static_cast<int64_t>(N), "run",
                      opts.progress && Progress::stderr_is_terminal());
    double sweep = 0;
    for (int64_t i = 0; i < n_images; ++i) {
        LOWBIT_ASSIGN(Sample smp, load_sample(i));
        const auto t_image = Clock::now();
        shared_fq.clear();
        ex->set_node_override(nullptr);
        ex->use_constant_variants({});
        const auto t0 = Clock::now();
        auto fp32 = ex->run({smp.input});
        if (!fp32) return fp32.status().with_context(fmt::format("float32 pass, image {}", i));
        full_ms.push_back(seconds_since(t0) * 1e3);
        if (metric == SensitivityMetric::Map && !map_ready) {
            const Tensor& out = (*fp32)[0];
            const std::vector<std::string> names = [&] {
                for (const auto& [k, v] : m.metadata) {
                    if (k == "names") return parse_ultralytics_names(v);
                }
                return std::vector<std::string>();
            }();
            const int expected =
                static_cast<int>(names.empty() ? gt.categories.size() : names.size());
            LOWBIT_ASSIGN(mapdec.layout,
                          detect_head_layout(ex->outputs()[0].name, out.shape(), mapdec.imgsz,
                                             opts.eval.head, expected));
            LOWBIT_ASSIGN(mapdec.cmap, build_class_map(gt.categories, mapdec.layout.num_classes,
                                                       opts.eval.class_map_file, names));
            mapdec.dec = opts.eval.decode;
            if (mapdec.layout.kind == HeadKind::EndToEnd) {
                mapdec.dec.apply_sigmoid = false;
            } else if (opts.eval.scores == ScoreMode::Auto) {
                mapdec.dec.apply_sigmoid = !class_values_are_probabilities(out, mapdec.layout);
            } else {
                mapdec.dec.apply_sigmoid = opts.eval.scores == ScoreMode::Logits;
            }
            map_ready = true;
        }
        const std::vector<Tensor> ref = std::move(fp32).value();
        if (metric == SensitivityMetric::Map) {
            LOWBIT_TRY(mapdec.decode(ref[0], smp.lb, smp.image_id, dets_fp32));
        }
        if (opts.all_but_one) {
            // The base pass of all-but-one: every placed node quantized.
            ex->set_node_override(override_fn, nodes, TensorView::Stored);
            ex->use_constant_variants(nodes);
            auto allq = ex->run({smp.input});
            if (!allq)
                return allq.status().with_context(fmt::format("quantized pass, image {}", i));
            if (metric == SensitivityMetric::Map) {
                LOWBIT_TRY(mapdec.decode((*allq)[0], smp.lb, smp.image_id, dets_allq));
            } else {
                const OutputError e = compare_outputs(*allq, ref);
                all_mse += e.mse;
                all_cos += e.cosine;
            }
        }
        if (!probed.empty()) {
            // Views of the float32 pass (valid until the next run()), taken on this thread.
            std::vector<Tensor> xs(code_inputs.size()), ys(N);
            std::vector<std::array<Tensor, 2>> adds(N);
            for (size_t c = 0; c < code_inputs.size(); ++c) {
                LOWBIT_ASSIGN(xs[c], ex->tensor(code_inputs[c].x, TensorView::Stored));
            }
            for (size_t k : probed) {
                LOWBIT_ASSIGN(ys[k], ex->tensor(first_output[k], TensorView::Stored));
                if (probes[k]->kind != ProbeKind::Add) continue;
                for (size_t j = 0; j < 2; ++j) {
                    LOWBIT_ASSIGN(adds[k][j], ex->tensor(probes[k]->add_in[j], TensorView::Stored));
                }
            }
            pool.run(static_cast<int64_t>(code_inputs.size()), [&](int64_t c, int) {
                CodeInput& ci = code_inputs[static_cast<size_t>(c)];
                quantize_values_nhwc(xs[static_cast<size_t>(c)].data<float>(), ci.nhwc, ci.c, ci.hw,
                                     ci.scale, mode, ci.codes.data());
            });
            std::vector<Status> failed(N);
            pool.run(static_cast<int64_t>(probed.size()), [&](int64_t j, int thread) {
                const size_t k = probed[static_cast<size_t>(j)];
                Probe& pr = *probes[k];
                float* buf = probe_out[static_cast<size_t>(thread)].data();
                const float* y = ys[k].data<float>();
                SumSquares ss;
                switch (pr.kind) {
                    case ProbeKind::Conv:
                        failed[k] = pr.conv->run(code_inputs[pr.input].codes.data(), buf);
                        if (!failed[k]) return;
                        ss = sum_squares_conv(y, pr.y_nhwc, buf, pr.scale, pr.bias, pr.m, pr.ohw);
                        break;
                    case ProbeKind::Select:
                        ss = sum_squares_select(y, ys[k].numel(), pr.in_scale, mode, buf);
                        break;
                    case ProbeKind::Add:
                        ss = sum_squares_add(y, adds[k][0].data<float>(), adds[k][1].data<float>(),
                                             ys[k].numel(), pr.add_scale, mode, buf);
                        break;
                }
                signal[k] += ss.signal;
                noise[k] += ss.noise;
            });
            for (size_t k : probed) {
                if (!failed[k]) {
                    return failed[k].with_context(
                        fmt::format("image {}, node {}", i, g.nodes[nodes[k]].describe()));
                }
            }
            progress.advance(static_cast<int64_t>(probed.size()));
        }
        for (size_t k = 0; k < N; ++k) {
            if (probes[k]) continue;  // measured above
            ex->set_node_override(override_fn, active[k], TensorView::Stored);
            ex->use_constant_variants(active[k]);
            Result<std::vector<Tensor>> outs = invalid("not run");
            if (metric == SensitivityMetric::LocalSqnr) {
                // Only the node's own output: copying the graph outputs (unchanged here) would
                // cost as much as the sums.
                outs = ex->run_nodes({nodes[k]}, {first_output[k]}, TensorView::Stored, false);
            } else if (opts.naive) {
                outs = ex->run({smp.input});
            } else {
                outs = ex->run_nodes(cones[k]);
            }
            if (!outs) {
                return outs.status().with_context(
                    fmt::format("image {}, node {}", i, g.nodes[nodes[k]].describe()));
            }
            if (metric == SensitivityMetric::LocalSqnr) {
                // Both as stored (same layout): the sums are over all elements.
                LOWBIT_ASSIGN(Tensor y, ex->tensor(first_output[k], TensorView::Stored));
                const Tensor& yq = outs->back();
                if (y.dtype() == DType::Float32) {
                    const SumSquares ss = sum_squares(y.data<float>(), yq.data<float>(), y.numel());
                    signal[k] += ss.signal;
                    noise[k] += ss.noise;
                }
            } else if (metric == SensitivityMetric::Map) {
                LOWBIT_TRY(mapdec.decode((*outs)[0], smp.lb, smp.image_id, dets[k]));
            } else {
                const OutputError e = compare_outputs(*outs, ref);
                mse[k] += e.mse;
                cosd[k] += e.cosine;
            }
            progress.advance();
        }
        sweep += seconds_since(t_image);
    }
    progress.finish();
    ex->set_node_override(nullptr);
    ex->use_constant_variants({});

    // Cost in full-pass equivalents per image.
    SensitivityCost& cost = rep.cost;
    cost.full_pass_ms = median(full_ms);
    cost.sweep_seconds = sweep;
    const double per_image_pass = cost.full_pass_ms * 1e-3 * static_cast<double>(n_images);
    cost.passes_per_image = per_image_pass > 0 ? sweep / per_image_pass : 0;
    if (metric == SensitivityMetric::LocalSqnr) {
        cost.naive_passes_per_image = 1.0 + static_cast<double>(N);
    } else {
        cost.naive_passes_per_image = static_cast<double>(N);
    }
    cost.naive_measured = opts.naive;
    if (opts.naive) cost.naive_passes_per_image = cost.passes_per_image;
    cost.ratio_vs_naive =
        cost.naive_passes_per_image > 0 ? cost.passes_per_image / cost.naive_passes_per_image : 0;
    {
        // The default (fused) program's pass, for reference: overrides cannot use it.
        ExecutorOptions fo = eo;
        auto fused = Executor::create(m, fo);
        if (fused) {
            LOWBIT_ASSIGN(Sample smp, load_sample(0));
            std::vector<double> ms;
            for (int r = 0; r < 9; ++r) {
                const auto t0 = Clock::now();
                auto out = (*fused)->run({smp.input});
                if (!out) break;
                if (r > 0) ms.push_back(seconds_since(t0) * 1e3);
            }
            cost.fused_full_pass_ms = median(ms);
            if (cost.fused_full_pass_ms > 0) {
                cost.fused_passes_per_image =
                    sweep / (cost.fused_full_pass_ms * 1e-3 * static_cast<double>(n_images));
            }
        }
    }

    // Scores.
    const double n_img = static_cast<double>(n_images);
    double map_fp32 = 0, map_allq = 0;
    CocoEvalOptions co;
    co.img_ids = val_ids;
    co.n_threads = opts.n_threads;
    if (metric == SensitivityMetric::Map) {
        LOWBIT_ASSIGN(CocoEvalResult r, coco_evaluate(gt, dets_fp32, co));
        map_fp32 = r.stats[0];
        rep.reference["fp32_map50_95"] = map_fp32;
        rep.reference["fp32_map50"] = r.stats[1];
        if (opts.all_but_one) {
            LOWBIT_ASSIGN(CocoEvalResult q, coco_evaluate(gt, dets_allq, co));
            map_allq = q.stats[0];
            rep.reference["all_quantized_map50_95"] = map_allq;
        }
    } else if (opts.all_but_one) {
        rep.reference["all_quantized_output_mse"] = all_mse / n_img;
        rep.reference["all_quantized_cosine"] = all_cos / n_img;
    }
    int64_t total_macs = 0;
    for (size_t idx : ex->plan_order()) total_macs += node_macs(g.nodes[idx], ex->executor());
    for (size_t k = 0; k < N; ++k) {
        const Node& node = g.nodes[nodes[k]];
        NodeSensitivity ns;
        ns.node = nodes[k];
        ns.name = node.name;
        ns.op_type = node.op_type;
        ns.scope = node_scope(node.name);
        ns.macs = node_macs(node, ex->executor());
        ns.macs_share =
            total_macs > 0 ? static_cast<double>(ns.macs) / static_cast<double>(total_macs) : 0;
        ns.cone_nodes = metric == SensitivityMetric::LocalSqnr ? 1 : cones[k].size();
        switch (metric) {
            case SensitivityMetric::OutputMse:
            case SensitivityMetric::Cosine: {
                const double e_mse = mse[k] / n_img, e_cos = cosd[k] / n_img;
                ns.metrics["output_mse"] = e_mse;
                ns.metrics["cosine"] = e_cos;
                const double e = metric == SensitivityMetric::OutputMse ? e_mse : e_cos;
                if (opts.all_but_one) {
                    const double all =
                        metric == SensitivityMetric::OutputMse ? all_mse / n_img : all_cos / n_img;
                    ns.score = all - e;
                    ns.metrics["recovery"] = ns.score;
                    ns.metrics["recovery_fraction"] = all > 0 ? ns.score / all : 0.0;
                } else {
                    ns.score = e;
                }
                break;
            }
            case SensitivityMetric::LocalSqnr: {
                // A node whose quantization changes nothing gets a capped 300 dB.
                double db = 300.0;
                if (noise[k] > 0 && signal[k] > 0) db = 10.0 * std::log10(signal[k] / noise[k]);
                if (signal[k] == 0 && noise[k] > 0) db = -300.0;
                db = std::clamp(db, -300.0, 300.0);
                ns.metrics["local_sqnr_db"] = db;
                ns.score = -db;
                break;
            }
            case SensitivityMetric::Map: {
                LOWBIT_ASSIGN(CocoEvalResult r, coco_evaluate(gt, dets[k], co));
                ns.metrics["map50_95"] = r.stats[0];
                ns.metrics["map50"] = r.stats[1];
                if (opts.all_but_one) {
                    ns.score = r.stats[0] - map_allq;
                    ns.metrics["recovery"] = ns.score;
                } else {
                    ns.score = map_fp32 - r.stats[0];
                    ns.metrics["map_drop"] = ns.score;
                }
                break;
            }
        }
        if (!std::isfinite(ns.score)) ns.score = std::numeric_limits<double>::max();
        rep.nodes.push_back(std::move(ns));
    }
    // Rank: score descending; ties keep plan order (stable), so the ranking is deterministic.
    std::stable_sort(
        rep.nodes.begin(), rep.nodes.end(),
        [](const NodeSensitivity& a, const NodeSensitivity& b) { return a.score > b.score; });
    for (size_t r = 0; r < rep.nodes.size(); ++r) rep.nodes[r].rank = static_cast<int>(r) + 1;
    return rep;
}

nlohmann::ordered_json sensitivity_json(const SensitivityRunInfo& info,
                                        const SensitivityOptions& opts,
                                        const SensitivityReport& r) {
    nlohmann::ordered_json j;
    j["tool"] = "lowbit sensitivity";
    j["lowbit_version"] = LOWBIT_VERSION;
    j["model"] = info.model;
    j["mode"] = info.mode;
    j["metric"] = sensitivity_metric_name(opts.metric);
    j["all_but_one"] = opts.all_but_one;
    j["images"] = r.images;
    j["calibration"] = {{"method", r.method},
                        {"source", info.calib_source},
                        {"samples", r.calib_samples},
                        {"seconds", r.calib_seconds}};
    j["cost"] = {{"full_pass_ms", r.cost.full_pass_ms},
                 {"sweep_seconds", r.cost.sweep_seconds},
                 {"passes_per_image", r.cost.passes_per_image},
                 {"naive_passes_per_image", r.cost.naive_passes_per_image},
                 {"ratio_vs_naive", r.cost.ratio_vs_naive},
                 {"naive_measured", r.cost.naive_measured},
                 {"fused_full_pass_ms", r.cost.fused_full_pass_ms},
                 {"fused_passes_per_image", r.cost.fused_passes_per_image},
                 {"quant_kernel_nodes", r.cost.quant_kernel_nodes}};
    const char* score_is = "";
    switch (opts.metric) {
        case SensitivityMetric::OutputMse: score_is = "output_mse"; break;
        case SensitivityMetric::Cosine: score_is = "1 - cosine similarity"; break;
        case SensitivityMetric::LocalSqnr: score_is = "-local_sqnr_db"; break;
        case SensitivityMetric::Map: score_is = "mAP50-95 drop"; break;
    }
    j["score"] = opts.all_but_one
                     ? fmt::format(
                           "recovery: error with every node quantized minus error with "
                           "all but this node ({})",
                           score_is)
                     : std::string(score_is);
    if (!r.reference.empty()) j["reference"] = r.reference;
    if (opts.metric == SensitivityMetric::Map) {
        j["val"] = {{"ann", opts.eval.ann_path},
                    {"images_dir", opts.eval.images_dir},
                    {"images", r.images}};
    }
    nlohmann::ordered_json nodes = nlohmann::ordered_json::array();
    for (const NodeSensitivity& n : r.nodes) {
        nodes.push_back({{"rank", n.rank},
                         {"node", n.name},
                         {"op_type", n.op_type},
                         {"scope", n.scope},
                         {"macs", n.macs},
                         {"macs_share", n.macs_share},
                         {"score", n.score},
                         {"metrics", n.metrics},
                         {"cone_nodes", n.cone_nodes}});
    }
    j["nodes"] = nodes;
    if (!r.notes.empty()) j["notes"] = r.notes;
    return j;
}

std::string sensitivity_markdown(const SensitivityRunInfo& info, const SensitivityOptions& opts,
                                 const SensitivityReport& r) {
    std::string md;
    md +=
        fmt::format("# lowbit sensitivity: {} ({}, {}{})\n\n", info.model, info.mode,
                    sensitivity_metric_name(opts.metric), opts.all_but_one ? ", all but one" : "");
    md += fmt::format(
        "{} images; calibration {} on {}. Each quantizable node is fake-quantized {} (INT8 "
        "amax/127 or FP8 E4M3FN amax/448, weights per channel) and the model compared with "
        "float32.\n\n",
        r.images, r.method, info.calib_source,
        opts.all_but_one ? "with every other placed node (all but this one)" : "alone");
    switch (opts.metric) {
        case SensitivityMetric::OutputMse:
            md += "Score: mean squared error of the graph outputs";
            break;
        case SensitivityMetric::Cosine:
            md += "Score: 1 - cosine similarity of the graph outputs";
            break;
        case SensitivityMetric::LocalSqnr:
            md += "Score: -SQNR (dB) of the node's own output from float32 inputs";
            break;
        case SensitivityMetric::Map: md += "Score: mAP50-95 drop on the validation subset"; break;
    }
    md += opts.all_but_one ? " recovered by keeping the node in high precision (error with all "
                             "quantized minus error with all but this node).\n"
                           : "; higher = more sensitive.\n";
    md += fmt::format(
        "\nCost: {:.2f} full-pass equivalents per image ({:.1f} s sweep, full pass {:.2f} ms, "
        "the sweep's own float32 pass that keeps every tensor; {:.2f} passes of the default "
        "fused program, {:.2f} ms); naive {:.1f} ({}); ratio {:.3f}.\n",
        r.cost.passes_per_image, r.cost.sweep_seconds, r.cost.full_pass_ms,
        r.cost.fused_passes_per_image, r.cost.fused_full_pass_ms, r.cost.naive_passes_per_image,
        r.cost.naive_measured ? "measured" : "one full pass per node", r.cost.ratio_vs_naive);
    if (!r.notes.empty()) md += "\nNotes:\n";
    for (const std::string& n : r.notes) md += "- " + n + "\n";
    md += "\n";
    std::vector<std::string> keys;
    if (!r.nodes.empty()) {
        for (auto it = r.nodes[0].metrics.begin(); it != r.nodes[0].metrics.end(); ++it) {
            keys.push_back(it.key());
        }
    }
    md += "| rank | node | op | scope | MACs % | score |";
    for (const auto& k : keys) md += " " + k + " |";
    md += "\n|---:|---|---|---|---:|---:|";
    for (size_t k = 0; k < keys.size(); ++k) md += "---:|";
    md += "\n";
    for (const NodeSensitivity& n : r.nodes) {
        md += fmt::format("| {} | `{}` | {} | `{}` | {:.2f} | {:.4g} |", n.rank, n.name, n.op_type,
                          n.scope, 100.0 * n.macs_share, n.score);
        for (const auto& k : keys) {
            const auto& v = n.metrics[k];
            md += v.is_number() ? fmt::format(" {:.4g} |", v.get<double>()) : " |";
        }
        md += "\n";
    }
    return md;
}

}  // namespace lowbit::quant
