// lowbit_ops: every fast CPU kernel against its reference kernel, case by case, in the manner of
// ggml's test-backend-ops.
//
//   lowbit_ops [test|perf|list] [-o OP] [-n TEXT] [-r REPEATS]
//
// A case is one node (op, shapes, attributes, dtype, how its inputs are stored, Conv fusion) on
// seeded random inputs. `test` (the default) plans it with CpuBackend::choose() exactly as the
// executor does, checks that the expected kernel-table row took it, runs that fast op on inputs
// in the planned layouts, and compares its (plain) outputs with the reference kernels
// (KernelRegistry) run on plain inputs: max |fast - ref| / max |ref| must not exceed the case's
// tolerance (0: bytes equal). `perf` times the fast op's run() and the reference run() (median
// of the repeats; layout conversions excluded) and prints both, never asserting. `list` prints
// the cases and the kernel table. -o keeps cases of one op type, -n cases whose name contains
// TEXT. Every mode fails (exit 1) when a row of the kernel table has no case, so the case list
// covers every fast kernel; `test` also fails on any case that fails. Usage errors exit 2.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "../kernel_call.h"
#include "core/thread_pool.h"
#include "runtime/kernels/cpu/fast_ops.h"
#include "runtime/kernels/cpu/kernel_table.h"
#include "runtime/layout.h"

namespace lowbit::test {

extern std::atomic<bool> g_count_allocs;
extern std::atomic<int64_t> g_allocs;

namespace {

using cpu::ConvFusion;
using cpu::CpuBackend;
using cpu::FastPlan;
using cpu::Operand;

// ---- tolerances: max |fast - ref| / max |ref| over the outputs --------------------------------

// Data movement, max-pooling and the same IEEE operation in the same order: bit-exact.
constexpr double kExact = 0.0;
// oneDNN sums the C*kH*kW (or K) products in another order than the reference GEMM (blocked,
// Winograd for 3x3 s1); a float32 sum of a few hundred terms differs by a few ulp of the
// largest partial sum. 1e-4 of the output's largest magnitude is what executor_fast_test allows.
constexpr double kAccumulation = 1e-4;
// vmath.h's exp / sigmoid stay within 1e-6 relative of std::exp-based results (its header);
// 1e-5 leaves room for the softmax sum over a row adding those errors.
constexpr double kVectorMath = 1e-5;
// GridSample: the reference's bilinear expression on the same operands; only the compiler's
// contraction of its products into fused multiply-adds may differ (a few ulp).
constexpr double kGridSample = 1e-6;
// float16 outputs: a float32 result that differs in the last bits can round to the neighbouring
// float16 value, 2^-10 relative; 2e-3 of the largest magnitude covers one such flip.
constexpr double kHalf = 2e-3;
// float16 convs on bf16 kernels: each operand rounded to bfloat16 moves by up to 2^-9 of its
// value, so a sum of K products moves by about 2^-9 * sqrt(K) * a typical |x*w| (random signs):
// ~1e-3 of the output's largest magnitude here; 1e-2 bounds it with room to spare and still
// fails a kernel that drops or misplaces a term.
constexpr double kBf16 = 1e-2;

struct OpCase {
    std::string name;         // printed; -n matches against it
    std::string entry;        // the kernel-table row that must take the node
    KernelCall call;          // op, inputs, attributes, opset, constant inputs, threads
    std::vector<Layout> stored = {};  // how each input's producer stores it (default Plain)
    // The op is asked to write output 0 channels-last (FastOp::write_output_nhwc, as the program
    // builder does for a QuantizeLinear whose output is reordered to NHWC); it must accept.
    bool out_nhwc = false;
    ConvFusion fusion = {};
    Tensor residual = {};     // with fusion.residual: R, passed to the fast op as input 3
    Tensor bias = {};         // with fusion.matmul_bias: the bias, passed as input 2
    // With fusion.matmul_scale / matmul_residual: the layer scale (input 3) and the residual
    // (input 4; stored NHWC with matmul_nhwc, which transposes the product [0, 3, 1, 2]).
    Tensor mm_scale = {}, mm_residual = {};
    double tol = kExact;
    // An int8 Q/DQ conv (fusion.quant): the fast op reads these codes as input 0 (and input 3
    // with quant->residual_q); the reference runs the Conv on their DequantizeLinear values
    // (call.inputs, residual) and ends with QuantizeLinear when quant->out_q.
    std::shared_ptr<cpu::QuantConvSpec> quant = {};
    std::shared_ptr<Tensor> w_codes = {};  // what quant->w_codes points at
    Tensor x_codes = {}, r_codes = {};
    // With fusion.bn: the BatchNormalization's scale, B, mean, var and epsilon (the reference
    // runs the node); fusion.bn points at bn_fold.
    std::vector<Tensor> bn_params = {};
    float bn_epsilon = 1e-5f;
    std::shared_ptr<cpu::BnFold> bn_fold = {};
    // An int8 Concat / MaxPool -> QuantizeLinear (fusion.qmove): the fast op reads in_codes[k]
    // where qmove->in_scale[k] > 0 (call.inputs[k] holds their DequantizeLinear values, which
    // the reference reads) and writes int8 codes; the reference ends with QuantizeLinear.
    std::shared_ptr<cpu::QuantMoveSpec> qmove = {};
    std::vector<Tensor> in_codes = {};
    // A LayerNorm (fusion.layer_norm): the node is its first ReduceMean (axes -1, opset 13), or
    // with in_nhwc the Transpose [0, 2, 3, 1] before it; the reference runs the decomposed
    // chain; the fast op reads x, gamma and beta (absent when empty) and writes ln_out.
    std::shared_ptr<cpu::LayerNormSpec> layer_norm = {};
    Tensor ln_gamma = {}, ln_beta = {};
    Shape ln_out = {};
};

// ---- inputs --------------------------------------------------------------------------------

Tensor random_tensor(DType dt, const Shape& shape, uint32_t seed, float lo = -1.0f,
                     float hi = 1.0f) {
    Tensor t(dt, shape);
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(lo, hi);
    for (int64_t i = 0; i < t.numel(); ++i) {
        const float v = u(rng);
        if (dt == DType::Float32) {
            t.data<float>()[i] = v;
        } else if (dt == DType::Float16) {
            t.data<uint16_t>()[i] = float_to_half(v);
        } else if (dt == DType::Float8E4M3FN) {  // E4M3 values in [-8, 8]
            t.data<uint8_t>()[i] = float_to_fp8(v * 8.0f, dt, true);
        } else if (dt == DType::Int4) {  // the INT4 grid, -8..7, one value a byte
            t.data<int8_t>()[i] = static_cast<int8_t>(std::clamp(std::lround(v * 8.0f), -8L, 7L));
        } else {  // Int8, the only other dtype the cases use
            t.data<int8_t>()[i] = static_cast<int8_t>(std::lround(v * 100.0f));
        }
    }
    return t;
}

Tensor rnd(const Shape& shape, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
    return random_tensor(DType::Float32, shape, seed, lo, hi);
}

std::string dims(const Shape& s) {
    return s.empty() ? "scalar" : fmt::format("{}", fmt::join(s, "x"));
}

// ---- the cases -----------------------------------------------------------------------------

struct ConvSpec {
    int64_t c, m, h, w, k, stride = 1, group = 1, dilation = 1;
    bool bias = true, bn = false, silu = false, relu = false, hardswish = false, residual = false;
    bool relu_after = false;
    DType dtype = DType::Float32;
    int threads = 2;
};

// A BatchNormalization after the conv (fusion.bn) with random parameters; the fold is
// runtime/fusion.cpp's arithmetic: scale / sqrt(var + eps), B - mean * that.
void add_bn(OpCase& c, int64_t m, uint32_t seed) {
    c.bn_params = {rnd({m}, seed + 4, 0.5f, 1.5f), rnd({m}, seed + 5), rnd({m}, seed + 6),
                   rnd({m}, seed + 7, 0.2f, 2.0f)};
    c.bn_epsilon = 1e-3f;
    c.bn_fold = std::make_shared<cpu::BnFold>();
    for (int64_t k = 0; k < m; ++k) {
        const float a = c.bn_params[0].data<float>()[k] /
                        std::sqrt(c.bn_params[3].data<float>()[k] + c.bn_epsilon);
        c.bn_fold->scale.push_back(a);
        c.bn_fold->shift.push_back(c.bn_params[1].data<float>()[k] -
                                   c.bn_params[2].data<float>()[k] * a);
    }
    c.fusion.bn = c.bn_fold.get();
}

OpCase conv_case(const ConvSpec& s, uint32_t seed) {
    const int64_t pad = (s.k - 1) / 2 * s.dilation;
    OpCase c;
    c.entry = "conv";
    c.call.op = "Conv";
    c.call.n_threads = s.threads;
    c.call.inputs = {random_tensor(s.dtype, {1, s.c, s.h, s.w}, seed),
                     random_tensor(s.dtype, {s.m, s.c / s.group, s.k, s.k}, seed + 1, -0.3f, 0.3f)};
    if (s.bias) c.call.inputs.push_back(random_tensor(s.dtype, {s.m}, seed + 2));
    c.call.constant_inputs = {1, 2};
    c.call.attrs = {{"kernel_shape", attr_ints({s.k, s.k})},
                    {"strides", attr_ints({s.stride, s.stride})},
                    {"pads", attr_ints({pad, pad, pad, pad})},
                    {"dilations", attr_ints({s.dilation, s.dilation})},
                    {"group", attr_i(s.group)}};
    c.fusion = {s.silu, s.residual};
    c.fusion.relu = s.relu;
    c.fusion.relu_after = s.relu_after;
    c.fusion.hardswish = s.hardswish;  // HardSigmoid's ONNX defaults: alpha 0.2, beta 0.5
    c.fusion.hs_alpha = 0.2f;
    c.fusion.hs_beta = 0.5f;
    if (s.bn) add_bn(c, s.m, seed);
    if (s.residual) {
        const int64_t oh = (s.h + 2 * pad - s.dilation * (s.k - 1) - 1) / s.stride + 1;
        const int64_t ow = (s.w + 2 * pad - s.dilation * (s.k - 1) - 1) / s.stride + 1;
        c.residual = random_tensor(s.dtype, {1, s.m, oh, ow}, seed + 3);
    }
    c.tol = s.dtype == DType::Float16 ? kHalf : kAccumulation;
    const std::string kind = s.group == s.c && s.group > 1 ? " depthwise" : s.group > 1 ? " grouped"
                                                                                        : "";
    c.name = fmt::format("Conv {}x{} s{} d{} g{}{} {}->{} {}x{}{}{}{}{}{}{} {} t{}", s.k, s.k,
                         s.stride, s.dilation, s.group, kind, s.c, s.m, s.h, s.w,
                         s.bias ? " +bias" : "", s.bn ? " +BN" : "", s.silu ? " +SiLU" : "",
                         s.relu ? " +Relu" : "", s.hardswish ? " +HardSwish" : "",
                         s.residual ? (s.relu_after ? " +residual +Relu" : " +residual") : "",
                         dtype_name(s.dtype), s.threads);
    return c;
}

// DequantizeLinear's arithmetic: float(q) * scale.
Tensor dequantized(const Tensor& q, const std::vector<float>& scale, int64_t axis_len = 1) {
    Tensor t(DType::Float32, q.shape());
    const int64_t inner = q.numel() / (q.shape().empty() ? 1 : q.shape()[0]);
    for (int64_t i = 0; i < q.numel(); ++i) {
        const float s = axis_len == 1 ? scale[0] : scale[static_cast<size_t>(i / inner)];
        const bool integer = q.dtype() == DType::Int8 || q.dtype() == DType::Int4;
        const float code = integer ? static_cast<float>(q.data<int8_t>()[i])
                                   : fp8_to_float(q.data<uint8_t>()[i], q.dtype());
        t.data<float>()[i] = code * s;
    }
    return t;
}

// The int8 Q/DQ conv step: codes in [-100, 100], weights per output channel, the output
// quantized (out_q) to about 60 codes of range, or float32.
// codes Float8E4M3FN: the FP8 step (qconv_fp8), E4M3 values in [-8, 8].
// w_int4 (int8 codes only): W4A8, INT4 weight codes in [-8, 7] (qconv_w4a8), scaled up 16x so
// the products span the range they have with int8 weights.
OpCase qconv_case(const ConvSpec& s, bool out_q, bool residual_q, uint32_t seed,
                  DType codes = DType::Int8, bool w_int4 = false) {
    OpCase c = conv_case(s, seed);
    const bool fp8 = codes == DType::Float8E4M3FN;
    c.entry = fp8 ? "qconv_fp8" : (w_int4 ? "qconv_w4a8" : "qconv_int8");
    auto q = std::make_shared<cpu::QuantConvSpec>();
    q->codes = codes;
    c.x_codes = random_tensor(codes, c.call.inputs[0].shape(), seed + 5);
    auto w_codes = std::make_shared<Tensor>(
        random_tensor(w_int4 ? DType::Int4 : codes, c.call.inputs[1].shape(), seed + 6));
    q->w_codes = w_codes.get();
    q->x_scale = 0.01f;
    const float w_unit = w_int4 ? 0.032f : 0.002f;
    for (int64_t m = 0; m < s.m; ++m) q->w_scale.push_back(w_unit * static_cast<float>(1 + m % 5));
    c.call.inputs[0] = dequantized(c.x_codes, {q->x_scale});
    c.call.inputs[1] = dequantized(*w_codes, q->w_scale, s.m);
    if (s.residual && residual_q) {
        q->residual_q = true;
        q->r_scale = 0.005f;
        c.r_codes = random_tensor(codes, c.residual.shape(), seed + 7);
        c.residual = dequantized(c.r_codes, {q->r_scale});
    }
    q->out_q = out_q;
    q->y_scale = 0.02f;
    c.quant = q;
    c.w_codes = w_codes;
    c.fusion.quant = q.get();
    if (fp8) {
        q->x_scale = 0.1f;
        q->r_scale = 0.05f;
        q->y_scale = 0.1f;
        for (float& w : q->w_scale) w *= 2.0f;
        c.call.inputs[0] = dequantized(c.x_codes, {q->x_scale});
        c.call.inputs[1] = dequantized(*w_codes, q->w_scale, s.m);
        if (s.residual && residual_q) c.residual = dequantized(c.r_codes, {q->r_scale});
    }
    // One code where a requantization ties (a float32 sum in another order) of ~60 codes; for
    // E4M3, one step of the largest value's binade (up to 1/8 of that value).
    c.tol = out_q ? (fp8 ? 1.0 / 8 + 1e-3 : 1.5 / 50) : kAccumulation;
    c.name = fmt::format("QConv {} {}{}{}", fp8 ? "fp8" : (w_int4 ? "w4a8" : "int8"),
                         c.name.substr(5), residual_q ? (fp8 ? " (R fp8)" : " (R int8)") : "",
                         out_q ? (fp8 ? " ->fp8" : " ->int8") : " ->f32");
    return c;
}

std::vector<OpCase> qconv_cases() {
    std::vector<OpCase> v;
    uint32_t seed = 700;
    v.push_back(qconv_case({.c = 16, .m = 32, .h = 20, .w = 20, .k = 3, .silu = true}, true,
                           false, seed += 10));
    v.push_back(qconv_case({.c = 32, .m = 24, .h = 17, .w = 19, .k = 1}, false, false, seed += 10));
    v.push_back(qconv_case({.c = 24, .m = 24, .h = 17, .w = 19, .k = 3, .group = 24,
                            .silu = true},
                           true, false, seed += 10));
    v.push_back(qconv_case({.c = 32, .m = 32, .h = 15, .w = 15, .k = 3, .stride = 2,
                            .bias = false, .threads = 1},
                           true, false, seed += 10));
    v.push_back(qconv_case({.c = 16, .m = 16, .h = 40, .w = 33, .k = 3, .silu = true,
                            .residual = true},
                           true, true, seed += 10));
    v.push_back(qconv_case({.c = 16, .m = 16, .h = 21, .w = 21, .k = 3, .residual = true}, false,
                           false, seed += 10));
    // Narrow convs on the direct VNNI kernel (qconv_direct.h): a 3-channel stem, 12 -> 24
    // stride 2 at one thread, three blocks of output channels with a partial last one, nine
    // blocks on a 10x10 map.
    v.push_back(qconv_case({.c = 3, .m = 12, .h = 33, .w = 31, .k = 3, .stride = 2, .silu = true},
                           true, false, seed += 10));
    v.push_back(qconv_case({.c = 12, .m = 24, .h = 41, .w = 39, .k = 3, .stride = 2, .silu = true,
                            .threads = 1},
                           false, false, seed += 10));
    v.push_back(qconv_case({.c = 20, .m = 40, .h = 13, .w = 23, .k = 1, .silu = true,
                            .residual = true},
                           true, true, seed += 10));
    v.push_back(qconv_case({.c = 72, .m = 144, .h = 10, .w = 10, .k = 1, .silu = true}, true,
                           false, seed += 10));
    constexpr DType kF8 = DType::Float8E4M3FN;
    v.push_back(qconv_case({.c = 16, .m = 32, .h = 20, .w = 20, .k = 3, .silu = true}, true,
                           false, seed += 10, kF8));
    v.push_back(qconv_case({.c = 32, .m = 24, .h = 17, .w = 19, .k = 1}, false, false, seed += 10,
                           kF8));
    v.push_back(qconv_case({.c = 24, .m = 24, .h = 17, .w = 19, .k = 3, .group = 24,
                            .silu = true},
                           true, false, seed += 10, kF8));
    v.push_back(qconv_case({.c = 32, .m = 32, .h = 15, .w = 15, .k = 3, .stride = 2,
                            .bias = false, .threads = 1},
                           true, false, seed += 10, kF8));
    v.push_back(qconv_case({.c = 16, .m = 16, .h = 40, .w = 33, .k = 3, .silu = true,
                            .residual = true},
                           true, true, seed += 10, kF8));
    v.push_back(qconv_case({.c = 16, .m = 16, .h = 21, .w = 21, .k = 3, .residual = true}, false,
                           false, seed += 10, kF8));
    // W4A8: INT4 weights on the int8 kernel.
    constexpr DType kI8 = DType::Int8;
    v.push_back(qconv_case({.c = 16, .m = 32, .h = 20, .w = 20, .k = 3, .silu = true}, true, false,
                           seed += 10, kI8, true));
    v.push_back(qconv_case({.c = 32, .m = 24, .h = 17, .w = 19, .k = 1}, false, false, seed += 10,
                           kI8, true));
    v.push_back(qconv_case({.c = 24, .m = 24, .h = 17, .w = 19, .k = 3, .group = 24, .silu = true},
                           true, false, seed += 10, kI8, true));
    v.push_back(qconv_case(
        {.c = 32, .m = 32, .h = 15, .w = 15, .k = 3, .stride = 2, .bias = false, .threads = 1},
        true, false, seed += 10, kI8, true));
    v.push_back(
        qconv_case({.c = 16, .m = 16, .h = 40, .w = 33, .k = 3, .silu = true, .residual = true},
                   true, true, seed += 10, kI8, true));
    // Depthwise convs: stride 2 with a partial block of channels at one thread (YOLOv10's
    // SCDown; oneDNN's kernel), a 5x5 window with an int8 residual (the direct depthwise
    // kernel, qconv_dw.h).
    v.push_back(qconv_case({.c = 40, .m = 40, .h = 19, .w = 21, .k = 3, .stride = 2, .group = 40,
                            .bias = false, .threads = 1},
                           true, false, seed += 10));
    v.push_back(qconv_case({.c = 36, .m = 36, .h = 15, .w = 17, .k = 5, .group = 36, .silu = true,
                            .residual = true},
                           true, true, seed += 10));
    return v;
}

std::vector<OpCase> conv_cases() {
    std::vector<OpCase> v;
    uint32_t seed = 100;
    const ConvSpec specs[] = {
        {.c = 3, .m = 16, .h = 33, .w = 31, .k = 3, .stride = 2, .silu = true, .residual = true},
        {.c = 16, .m = 24, .h = 20, .w = 20, .k = 1, .silu = true},
        {.c = 24, .m = 24, .h = 17, .w = 19, .k = 3, .group = 24, .silu = true},
        {.c = 32, .m = 32, .h = 15, .w = 15, .k = 3, .stride = 2, .group = 32},
        {.c = 12, .m = 18, .h = 14, .w = 13, .k = 3, .group = 3, .bias = false},
        {.c = 8, .m = 16, .h = 21, .w = 21, .k = 3, .dilation = 2, .residual = true},
        {.c = 32, .m = 48, .h = 44, .w = 37, .k = 3, .silu = true},  // Winograd-sized
        {.c = 16, .m = 32, .h = 64, .w = 61, .k = 3, .silu = true, .threads = 1},
        {.c = 16, .m = 32, .h = 64, .w = 61, .k = 3, .silu = true, .residual = true},  // chunked
        {.c = 8, .m = 16, .h = 19, .w = 17, .k = 3, .dtype = DType::Float16},
        {.c = 16, .m = 24, .h = 20, .w = 20, .k = 1, .silu = true, .dtype = DType::Float16},
        {.c = 24, .m = 24, .h = 17, .w = 19, .k = 3, .group = 24, .silu = true,
         .dtype = DType::Float16},
        {.c = 32, .m = 32, .h = 15, .w = 15, .k = 3, .stride = 2, .bias = false,
         .dtype = DType::Float16, .threads = 1},
        {.c = 16, .m = 32, .h = 64, .w = 61, .k = 3, .silu = true, .dtype = DType::Float16},
        // Folded BatchNormalization with the activations of MobileNetV3 and ResNet.
        {.c = 16, .m = 32, .h = 20, .w = 20, .k = 1, .bias = false, .bn = true,
         .hardswish = true},
        {.c = 24, .m = 24, .h = 17, .w = 19, .k = 3, .group = 24, .bn = true, .relu = true},
        {.c = 16, .m = 16, .h = 21, .w = 21, .k = 3, .bn = true, .residual = true},
        {.c = 32, .m = 48, .h = 44, .w = 37, .k = 3, .bias = false, .bn = true, .relu = true},
        {.c = 12, .m = 18, .h = 14, .w = 13, .k = 3, .group = 3, .hardswish = true,
         .residual = true},
        // ResNet's bottleneck end: 1x1 conv, BN, residual Add, Relu.
        {.c = 16, .m = 64, .h = 14, .w = 14, .k = 1, .bias = false, .bn = true, .residual = true,
         .relu_after = true},
        // Small maps with large weights: output-channel chunks at 2 and 3 threads (conv.cpp).
        // Winograd at 14x14, 3x3 s2 to 7x7, a 7-row 1x1 bottleneck end, MobileNetV3's 1x1
        // with HardSwish, 200 channels (no multiple of 16), a squeeze-excitation 1x1 map.
        {.c = 128, .m = 256, .h = 14, .w = 14, .k = 3, .bias = false, .bn = true, .relu = true},
        {.c = 256, .m = 256, .h = 14, .w = 14, .k = 3, .stride = 2, .relu = true, .threads = 3},
        {.c = 256, .m = 512, .h = 7, .w = 7, .k = 1, .bias = false, .bn = true, .residual = true,
         .relu_after = true},
        {.c = 160, .m = 960, .h = 7, .w = 7, .k = 1, .bias = false, .bn = true, .hardswish = true},
        {.c = 256, .m = 200, .h = 7, .w = 7, .k = 1, .silu = true, .threads = 3},
        {.c = 240, .m = 960, .h = 1, .w = 1, .k = 1},
    };
    for (const ConvSpec& s : specs) {
        v.push_back(conv_case(s, seed += 10));
        // float16 convs run as bf16 convs on this CPU (operands rounded to bfloat16).
        if (s.dtype == DType::Float16) {
            v.back().entry = "conv_fp16_bf16";
            v.back().tol = kBf16;
        }
    }
    return v;
}

// ConvTranspose: W [C, M/group, k, k]; the output size follows from the attributes (the
// reference kernel's prepare computes it).
struct DeconvSpec {
    int64_t c, m, h, w, k, stride = 1, group = 1, dilation = 1, pad = 0, out_pad = 0;
    bool bias = true, bn = false, silu = false, relu = false, residual = false;
    bool relu_after = false;
    std::string auto_pad = "";  // "" = NOTSET with explicit pads
    std::vector<int64_t> output_shape = {};
    int threads = 2;
};

OpCase deconv_case(const DeconvSpec& s, uint32_t seed) {
    OpCase c;
    // Kernel == stride without padding, dilation or groups: the matmul + tap scatter row.
    const bool taps = s.k == s.stride && s.group == 1 && s.dilation == 1 && s.pad == 0 &&
                      s.out_pad == 0 && !s.residual && s.output_shape.empty() &&
                      (s.auto_pad.empty() || s.auto_pad == "VALID");
    c.entry = taps ? "deconv_taps" : "deconv";
    c.call.op = "ConvTranspose";
    c.call.n_threads = s.threads;
    c.call.inputs = {rnd({1, s.c, s.h, s.w}, seed),
                     rnd({s.c, s.m / s.group, s.k, s.k}, seed + 1, -0.3f, 0.3f)};
    if (s.bias) c.call.inputs.push_back(rnd({s.m}, seed + 2));
    c.call.constant_inputs = {1, 2};
    c.call.attrs = {{"kernel_shape", attr_ints({s.k, s.k})},
                    {"strides", attr_ints({s.stride, s.stride})},
                    {"dilations", attr_ints({s.dilation, s.dilation})},
                    {"group", attr_i(s.group)}};
    if (s.auto_pad.empty()) {
        c.call.attrs["pads"] = attr_ints({s.pad, s.pad, s.pad, s.pad});
    } else {
        c.call.attrs["auto_pad"] = attr_s(s.auto_pad);
    }
    if (s.out_pad) c.call.attrs["output_padding"] = attr_ints({s.out_pad, s.out_pad});
    if (!s.output_shape.empty()) c.call.attrs["output_shape"] = attr_ints(s.output_shape);
    c.fusion = {s.silu, s.residual};
    c.fusion.relu = s.relu;
    c.fusion.relu_after = s.relu_after;
    if (s.bn) add_bn(c, s.m, seed);
    if (s.residual) {
        const int64_t ext = (s.k - 1) * s.dilation + 1;
        const int64_t oh = s.stride * (s.h - 1) + s.out_pad + ext - 2 * s.pad;
        const int64_t ow = s.stride * (s.w - 1) + s.out_pad + ext - 2 * s.pad;
        c.residual = rnd({1, s.m, oh, ow}, seed + 3);
    }
    c.tol = kAccumulation;
    const std::string geometry =
        (s.auto_pad.empty() ? "" : " " + s.auto_pad) +
        (s.output_shape.empty() ? ""
                                : fmt::format(" output_shape {}", fmt::join(s.output_shape, "x")));
    const std::string fused =
        fmt::format("{}{}{}{}{}", s.bias ? " +bias" : "", s.bn ? " +BN" : "",
                    s.silu ? " +SiLU" : "", s.relu ? " +Relu" : "",
                    s.residual ? (s.relu_after ? " +residual +Relu" : " +residual") : "");
    c.name = fmt::format("ConvTranspose {}x{} s{} d{} g{} pad {} outpad {}{} {}->{} {}x{}{} t{}",
                         s.k, s.k, s.stride, s.dilation, s.group, s.pad, s.out_pad, geometry, s.c,
                         s.m, s.h, s.w, fused, s.threads);
    return c;
}

std::vector<OpCase> deconv_cases() {
    std::vector<OpCase> v;
    uint32_t seed = 900;
    const DeconvSpec specs[] = {
        // FPN upsamplers: 4x4 s2 pad 1 and 2x2 s2, with a residual Add (lateral connection).
        {.c = 32, .m = 32, .h = 20, .w = 20, .k = 4, .stride = 2, .pad = 1, .residual = true},
        {.c = 24, .m = 8, .h = 40, .w = 37, .k = 2, .stride = 2},
        {.c = 16, .m = 16, .h = 17, .w = 15, .k = 3, .stride = 2, .pad = 1, .out_pad = 1,
         .silu = true},
        {.c = 12, .m = 18, .h = 13, .w = 14, .k = 3, .stride = 2, .group = 3, .pad = 1,
         .bias = false},
        {.c = 16, .m = 16, .h = 11, .w = 12, .k = 4, .stride = 2, .group = 16, .pad = 1},
        {.c = 8, .m = 16, .h = 19, .w = 17, .k = 3, .dilation = 2, .pad = 2},
        {.c = 8, .m = 8, .h = 9, .w = 10, .k = 3, .stride = 2, .auto_pad = "SAME_UPPER"},
        {.c = 8, .m = 8, .h = 9, .w = 10, .k = 3, .stride = 3, .output_shape = {28, 29}},
        {.c = 16, .m = 24, .h = 30, .w = 30, .k = 4, .stride = 2, .pad = 1, .threads = 1},
        {.c = 16, .m = 16, .h = 33, .w = 31, .k = 1, .stride = 2},
        // U-Net decoders: ConvTranspose -> BN -> Relu, grouped too; BN, residual Add, Relu.
        {.c = 32, .m = 16, .h = 20, .w = 18, .k = 2, .stride = 2, .bn = true, .relu = true},
        {.c = 12, .m = 18, .h = 13, .w = 14, .k = 3, .stride = 2, .group = 3, .pad = 1,
         .bias = false, .bn = true, .relu = true},
        {.c = 16, .m = 16, .h = 15, .w = 15, .k = 4, .stride = 2, .pad = 1, .bn = true,
         .residual = true, .relu_after = true},
        // Kernel == stride as matmul + tap scatter: 1 and 3 threads, 3x3 taps, SiLU, no bias;
        // with a residual Add the oneDNN deconvolution takes it.
        {.c = 24, .m = 40, .h = 21, .w = 19, .k = 2, .stride = 2, .silu = true, .threads = 1},
        {.c = 16, .m = 12, .h = 11, .w = 13, .k = 3, .stride = 3, .bias = false, .threads = 3},
        {.c = 16, .m = 16, .h = 20, .w = 20, .k = 2, .stride = 2, .residual = true},
    };
    for (const DeconvSpec& s : specs) v.push_back(deconv_case(s, seed += 10));
    return v;
}

OpCase unary(const std::string& op, const std::string& entry, const Shape& shape, Layout stored,
             int threads, double tol, uint32_t seed) {
    OpCase c;
    c.entry = entry;
    c.call.op = op;
    c.call.inputs = {rnd(shape, seed, -4.0f, 4.0f)};
    c.call.n_threads = threads;
    c.stored = {stored};
    c.tol = tol;
    c.name = fmt::format("{} {} {} t{}", op, dims(shape), layout_name(stored), threads);
    return c;
}

// Binary op; `b_shape` full, scalar or per-channel; operand b constant when `b_const`.
OpCase binary(const std::string& op, const Shape& a_shape, const Shape& b_shape, Layout a_stored,
              bool b_const, uint32_t seed) {
    OpCase c;
    c.entry = "binary";
    c.call.op = op;
    // Divisors kept away from zero so that a 1-ulp difference could not become a large one.
    c.call.inputs = {rnd(a_shape, seed), rnd(b_shape, seed + 1, 0.5f, 2.0f)};
    if (b_const) c.call.constant_inputs = {1};
    c.stored = {a_stored, b_shape == a_shape ? a_stored : Layout::Plain};
    c.tol = kExact;  // eltwise.cpp does the same IEEE operation per element as the reference
    c.name = fmt::format("{} {} {} with {}{}", op, dims(a_shape), layout_name(a_stored),
                         dims(b_shape), b_const ? " constant" : "");
    return c;
}

std::vector<OpCase> elementwise_cases() {
    std::vector<OpCase> v;
    v.push_back(binary("Add", {1, 16, 20, 20}, {1, 16, 20, 20}, Layout::Nhwc, false, 1));
    v.push_back(binary("Mul", {1, 16, 20, 20}, {1, 16, 1, 1}, Layout::Nhwc, true, 2));
    v.push_back(binary("Add", {1, 16, 9, 11}, {16, 1, 1}, Layout::Nhwc, true, 3));
    v.push_back(binary("Sub", {2, 8, 10, 10}, {}, Layout::Plain, true, 4));
    v.push_back(binary("Div", {3, 40, 50}, {3, 40, 50}, Layout::Plain, false, 5));
    v.push_back(unary("Sigmoid", "sigmoid", {1, 16, 20, 20}, Layout::Nhwc, 2, kVectorMath, 6));
    v.push_back(unary("Sigmoid", "sigmoid", {2, 300}, Layout::Plain, 1, kVectorMath, 7));
    // The parallel reference is the reference kernel on slices: bit-identical by construction.
    v.push_back(unary("Relu", "parallel_ref", {1, 16, 96, 90}, Layout::Nhwc, 2, kExact, 8));
    v.push_back(unary("Tanh", "parallel_ref", {1, 8, 100, 90}, Layout::Plain, 2, kExact, 9));
    {
        OpCase c = unary("Clip", "parallel_ref", {1, 16, 96, 90}, Layout::Nhwc, 2, kExact, 10);
        c.call.inputs.push_back(scalar_f32(-0.5f));
        c.call.inputs.push_back(scalar_f32(1.5f));
        c.call.constant_inputs = {1, 2};
        c.name += " min -0.5 max 1.5";
        v.push_back(c);
    }
    for (const char* op : {"QuantizeLinear", "DequantizeLinear"}) {
        const bool q = std::string(op) == "QuantizeLinear";
        OpCase c;
        c.entry = "parallel_ref";
        c.call.op = op;
        c.call.inputs = {q ? rnd({1, 16, 96, 90}, 11, -3.0f, 3.0f)
                           : random_tensor(DType::Int8, {1, 16, 96, 90}, 11),
                         scalar_f32(0.02f), i8({}, {3})};
        c.call.constant_inputs = {1, 2};
        c.stored = {Layout::Nhwc};
        c.tol = kExact;
        c.name = fmt::format("{} per-tensor int8 1x16x96x90 nhwc t2", op);
        v.push_back(c);
    }
    // Too small to split, or one thread: one reference call on the stored (NHWC) data.
    v.push_back(unary("Tanh", "ref_elementwise", {1, 8, 9, 11}, Layout::Nhwc, 2, kExact, 12));
    v.push_back(unary("Relu", "ref_elementwise", {1, 16, 96, 90}, Layout::Nhwc, 1, kExact, 13));
    return v;
}

OpCase simple(const std::string& op, const std::string& entry, std::vector<Tensor> inputs,
              std::map<std::string, Attr> attrs, const std::string& what, double tol) {
    OpCase c;
    c.entry = entry;
    c.call.op = op;
    c.call.inputs = std::move(inputs);
    c.call.attrs = std::move(attrs);
    c.tol = tol;
    c.name = op + " " + what;
    return c;
}

// Per-tensor int8 QuantizeLinear / DequantizeLinear with zero point 0: bit-exact (ties and saturation
// included: inputs reach 3x the int8 range, and some lie exactly on half steps).
std::vector<OpCase> qdq_cases() {
    std::vector<OpCase> v;
    Tensor x = rnd({1, 16, 21, 19}, 800, -8.0f, 8.0f);
    for (int64_t i = 0; i < x.numel(); i += 7) x.data<float>()[i] = 0.5f * (i % 40 - 20) * 0.02f;
    for (Layout l : {Layout::Plain, Layout::Nhwc}) {
        OpCase q = simple("QuantizeLinear", "qdq_int8", {x, f32({}, {0.02f}), i8({}, {0})}, {},
                          fmt::format("int8 scale 0.02 1x16x21x19 {}", layout_name(l)), kExact);
        q.call.constant_inputs = {1, 2};
        q.stored = {l};
        v.push_back(q);
    }
    // The model input's quantization written channels-last: 3 channels (the VBMI RGB path; an
    // odd H*W and a batch of 2, so steps end at image and thread-range boundaries) and 16; and
    // the 16 x 16 tiles of other channel counts (YOLOv10's DFL softmax, [1, 16, 4, 8400], ends
    // in a partial pixel tile here; 20 and 33 channels end in a partial channel tile).
    for (const Shape& s :
         {Shape{2, 3, 37, 45}, Shape{1, 3, 160, 160}, Shape{1, 16, 21, 19}, Shape{1, 16, 4, 8403},
          Shape{1, 20, 5, 7}, Shape{2, 33, 9, 9}, Shape{1, 8, 3, 5}}) {
        Tensor xs = rnd(s, 803, -8.0f, 8.0f);
        for (int64_t i = 0; i < xs.numel(); i += 7) {
            xs.data<float>()[i] = 0.5f * static_cast<float>(i % 40 - 20) * 0.02f;  // ties
        }
        xs.data<float>()[1] = NAN;
        xs.data<float>()[2] = INFINITY;
        for (int threads : {1, 2}) {
            OpCase q =
                simple("QuantizeLinear", "qdq_int8", {xs, f32({}, {0.02f}), i8({}, {0})}, {},
                       fmt::format("int8 scale 0.02 {} plain->nhwc t{}", dims(s), threads), kExact);
            q.call.constant_inputs = {1, 2};
            q.call.n_threads = threads;
            q.out_nhwc = true;
            v.push_back(q);
        }
    }
    OpCase d = simple("DequantizeLinear", "qdq_int8",
                      {random_tensor(DType::Int8, {1, 8, 33, 17}, 801), f32({}, {0.037f}),
                       i8({}, {0})},
                      {}, "int8 scale 0.037 1x8x33x17", kExact);
    d.call.constant_inputs = {1, 2};
    v.push_back(d);
    // FP8 E4M3FN: bit-exact, saturating (|x| / scale up to 3x 448) or not (saturate=0: NaN),
    // E4M3 midpoints (ties), subnormals, and every code dequantized.
    Tensor xf = rnd({1, 16, 21, 19}, 802, -27.0f, 27.0f);
    for (int64_t i = 0; i < xf.numel(); i += 5) {
        const float grid = fp8_to_float(static_cast<uint8_t>(i % 254), DType::Float8E4M3FN);
        const float next = fp8_to_float(static_cast<uint8_t>(i % 254 + 1), DType::Float8E4M3FN);
        xf.data<float>()[i] = (i % 3 == 0 ? 0.5f * (grid + next) : grid) * 0.02f;
    }
    xf.data<float>()[1] = INFINITY;
    xf.data<float>()[2] = -INFINITY;
    xf.data<float>()[3] = NAN;
    Tensor z8(DType::Float8E4M3FN, {});
    z8.data<uint8_t>()[0] = 0;
    for (int sat : {1, 0}) {
        for (Layout l : {Layout::Plain, Layout::Nhwc}) {
            Attr a;
            a.kind = Attr::Kind::Int;
            a.i = sat;
            OpCase q = simple("QuantizeLinear", "qdq_fp8", {xf, f32({}, {0.02f}), z8},
                              {{"saturate", a}},
                              fmt::format("fp8 scale 0.02 saturate {} 1x16x21x19 {}", sat,
                                          layout_name(l)),
                              kExact);
            q.call.opset = 19;
            q.call.constant_inputs = {1, 2};
            q.stored = {l};
            v.push_back(q);
        }
    }
    Tensor codes(DType::Float8E4M3FN, {1, 4, 16, 17});
    for (int64_t i = 0; i < codes.numel(); ++i) {
        codes.data<uint8_t>()[i] = static_cast<uint8_t>(i * 7);
    }
    OpCase df = simple("DequantizeLinear", "qdq_fp8", {codes, f32({}, {0.037f}), z8}, {},
                       "fp8 scale 0.037 every code 1x4x16x17", kExact);
    df.call.opset = 19;
    df.call.constant_inputs = {1, 2};
    v.push_back(df);
    return v;
}

std::vector<OpCase> nhwc_cases() {
    std::vector<OpCase> v;
    {
        OpCase c = simple("Concat", "concat_nhwc",
                          {rnd({1, 6, 9, 7}, 20), rnd({1, 10, 9, 7}, 21), rnd({1, 3, 9, 7}, 22)},
                          {{"axis", attr_i(1)}}, "axis 1 of 6+10+3 channels 9x7, one input plain",
                          kExact);
        c.stored = {Layout::Nhwc, Layout::Plain, Layout::Nhwc};
        v.push_back(c);
    }
    {
        OpCase c = simple("Concat", "concat_nhwc",
                          {random_tensor(DType::Int8, {2, 5, 4, 6}, 23),
                           random_tensor(DType::Int8, {2, 3, 4, 6}, 24)},
                          {{"axis", attr_i(-3)}}, "axis -3 int8 5+3 channels batch 2", kExact);
        c.stored = {Layout::Nhwc, Layout::Nhwc};
        v.push_back(c);
    }
    // Plain Concats along an axis with a dim > 1 before it: the YOLO head's per-level anchors
    // [1, 144, A_i] along 2, a last-axis concat of three, int8 along 1 of a batch of 3, a rank-5
    // middle axis, an empty input. (Along axis 0, or with only 1s before the axis, the
    // reference step stays: the planner concatenates those in place.)
    v.push_back(simple("Concat", "concat_plain",
                       {rnd({1, 144, 400}, 26), rnd({1, 144, 100}, 27), rnd({1, 144, 25}, 37)},
                       {{"axis", attr_i(2)}}, "plain axis 2 of 400+100+25 anchors", kExact));
    v.push_back(simple("Concat", "concat_plain",
                       {rnd({2, 3, 5}, 28), rnd({2, 3, 1}, 29), rnd({2, 3, 7}, 30)},
                       {{"axis", attr_i(-1)}}, "plain axis -1 of 5+1+7", kExact));
    v.push_back(simple("Concat", "concat_plain",
                       {random_tensor(DType::Int8, {3, 2, 17}, 31),
                        random_tensor(DType::Int8, {3, 5, 17}, 32)},
                       {{"axis", attr_i(1)}}, "plain axis 1 int8 2+5 rows, batch 3", kExact));
    v.push_back(simple("Concat", "concat_plain",
                       {rnd({2, 3, 4, 5, 6}, 33), rnd({2, 3, 2, 5, 6}, 34)},
                       {{"axis", attr_i(2)}}, "plain rank 5 axis 2 of 4+2", kExact));
    v.push_back(simple("Concat", "concat_plain",
                       {rnd({2, 0, 3}, 35), rnd({2, 4, 3}, 36)},
                       {{"axis", attr_i(1)}}, "plain axis 1 of an empty input and 4", kExact));
    {
        OpCase c = simple("Split", "split_nhwc", {rnd({1, 24, 9, 7}, 25), i64({2}, {8, 16})},
                          {{"axis", attr_i(1)}}, "axis 1 into 8+16 channels 9x7", kExact);
        c.call.constant_inputs = {1};
        c.call.num_outputs = 2;
        c.stored = {Layout::Nhwc};
        v.push_back(c);
    }
    {
        OpCase c = simple("MaxPool", "maxpool_nhwc", {rnd({1, 16, 20, 20}, 26)},
                          {{"kernel_shape", attr_ints({5, 5})},
                           {"strides", attr_ints({1, 1})},
                           {"pads", attr_ints({2, 2, 2, 2})}},
                          "5x5 s1 pad 2 (SPPF) 16x20x20", kExact);
        c.stored = {Layout::Nhwc};
        v.push_back(c);
    }
    {
        OpCase c = simple("MaxPool", "maxpool_nhwc", {rnd({2, 8, 15, 13}, 27)},
                          {{"kernel_shape", attr_ints({3, 3})},
                           {"strides", attr_ints({2, 2})},
                           {"ceil_mode", attr_i(1)}},
                          "3x3 s2 ceil_mode batch 2 8x15x13", kExact);
        c.stored = {Layout::Nhwc};
        v.push_back(c);
    }
    {
        OpCase c = simple("GlobalAveragePool", "global_avgpool_nhwc", {rnd({1, 96, 14, 14}, 60)},
                          {}, "96 channels 14x14 (squeeze-excitation)", kExact);
        c.stored = {Layout::Nhwc};
        v.push_back(c);
    }
    {
        OpCase c = simple("GlobalAveragePool", "global_avgpool_nhwc", {rnd({2, 130, 7, 9}, 61)},
                          {}, "batch 2, 130 channels (a partial block) 7x9", kExact);
        c.stored = {Layout::Nhwc};
        v.push_back(c);
    }
    {
        OpCase c = simple("BatchNormalization", "batchnorm_nhwc",
                          {rnd({2, 24, 11, 9}, 62), rnd({24}, 63), rnd({24}, 64), rnd({24}, 65),
                           rnd({24}, 66, 0.1f, 2.0f)},
                          {{"epsilon", attr_f(1e-3f)}}, "batch 2, 24 channels 11x9 eps 1e-3",
                          kExact);
        c.call.constant_inputs = {1, 2, 3, 4};
        c.stored = {Layout::Nhwc};
        v.push_back(c);
    }
    {
        const Tensor scales = f32({4}, {1, 1, 2, 2});
        OpCase c = simple("Resize", "resize_nhwc", {rnd({1, 8, 10, 12}, 28), Tensor(), scales},
                          {{"mode", attr_s("nearest")},
                           {"coordinate_transformation_mode", attr_s("asymmetric")},
                           {"nearest_mode", attr_s("floor")}},
                          "nearest x2 asymmetric floor 8x10x12", kExact);
        c.call.constant_inputs = {2};
        c.stored = {Layout::Nhwc};
        v.push_back(c);
    }
    {
        const Tensor scales = f32({4}, {1, 1, 3, 2});
        OpCase c = simple("Resize", "resize_nhwc", {rnd({1, 5, 7, 6}, 29), Tensor(), scales},
                          {{"mode", attr_s("nearest")}},
                          "nearest x3/x2 half_pixel round_prefer_floor 5x7x6", kExact);
        c.call.constant_inputs = {2};
        c.stored = {Layout::Nhwc};
        v.push_back(c);
    }
    {
        OpCase c =
            simple("Pad", "pad_nhwc", {rnd({1, 32, 9, 11}, 67), i64({8}, {0, 0, 0, 0, 0, 0, 1, 1})},
                   {}, "constant 0, bottom/right 1 (RT-DETR stem) 32x9x11", kExact);
        c.call.constant_inputs = {1};
        c.stored = {Layout::Nhwc};
        v.push_back(c);
    }
    {
        OpCase c =
            simple("Pad", "pad_nhwc",
                   {rnd({2, 5, 6, 7}, 68), i64({8}, {0, 0, 2, 0, 0, 0, 1, 3}), scalar_f32(-0.75f)},
                   {}, "constant -0.75, top 2 bottom 1 right 3, batch 2 5x6x7", kExact);
        c.call.constant_inputs = {1, 2};
        c.stored = {Layout::Nhwc};
        v.push_back(c);
    }
    return v;
}

std::vector<OpCase> plain_cases() {
    std::vector<OpCase> v;
    v.push_back(simple("MatMul", "matmul", {rnd({1, 2, 24, 42}, 30), rnd({1, 2, 42, 24}, 31)}, {},
                       "1x2x24x42 by 1x2x42x24 (attention)", kAccumulation));
    {
        OpCase c = simple("MatMul", "matmul", {rnd({16, 42}, 32), rnd({42, 5}, 33)}, {},
                          "16x42 by constant 42x5", kAccumulation);
        c.call.constant_inputs = {1};
        v.push_back(c);
    }
    {
        // A linear layer over the pixels of a channels-last map: row chunks on 2 threads.
        OpCase c = simple("MatMul", "matmul", {rnd({1, 28, 28, 96}, 81), rnd({96, 160}, 82)}, {},
                          "1x28x28x96 by constant 96x160 (row chunks)", kAccumulation);
        c.call.constant_inputs = {1};
        v.push_back(c);
    }
    {
        // Few rows, wide weights (ConvNeXt's last stage): column chunks.
        OpCase c = simple("MatMul", "matmul", {rnd({1, 7, 7, 96}, 83), rnd({96, 700}, 84)}, {},
                          "1x7x7x96 by constant 96x700 (column chunks)", kAccumulation);
        c.call.constant_inputs = {1};
        v.push_back(c);
    }
    v.push_back(simple("MatMul", "matmul", {rnd({3, 20, 17}, 34), rnd({17, 9}, 35)}, {},
                       "3x20x17 by 17x9 (batch broadcast)", kAccumulation));
    // MatMul -> Add(., bias) fused (fusion.cpp): row chunks, column chunks, one primitive.
    for (const auto& [a, b, bias, threads, what] :
         {std::tuple{Shape{1, 28, 28, 96}, Shape{96, 160}, Shape{160}, 2, "row chunks"},
          std::tuple{Shape{1, 7, 7, 96}, Shape{96, 700}, Shape{700}, 2, "column chunks"},
          std::tuple{Shape{3, 20, 17}, Shape{17, 9}, Shape{1, 1, 9}, 1, "one primitive"}}) {
        OpCase c = simple("MatMul", "matmul", {rnd(a, 85), rnd(b, 86)}, {},
                          fmt::format("{} by constant {} + bias {} ({}, t{})", dims(a), dims(b),
                                      dims(bias), what, threads),
                          kAccumulation);
        c.call.constant_inputs = {1};
        c.call.n_threads = threads;
        c.fusion.matmul_bias = true;
        c.bias = rnd(bias, 87);
        v.push_back(c);
    }
    // ConvNeXt's block end fused (fusion.cpp): MatMul + bias -> Transpose [0, 3, 1, 2] -> Mul
    // (layer scale [C, 1, 1]) -> Add(residual, NHWC); row chunks, column chunks, one thread.
    for (const auto& [a, n, threads, what] :
         {std::tuple{Shape{1, 56, 56, 64}, int64_t{96}, 2, "row chunks"},
          std::tuple{Shape{1, 7, 7, 96}, int64_t{768}, 2, "column chunks"},
          std::tuple{Shape{1, 14, 14, 40}, int64_t{48}, 1, "one primitive"}}) {
        OpCase c = simple("MatMul", "matmul", {rnd(a, 88), rnd({a.back(), n}, 89)}, {},
                          fmt::format("{} by constant {}x{} + bias -> NHWC * scale + residual "
                                      "({}, t{})",
                                      dims(a), a.back(), n, what, threads),
                          kAccumulation);
        c.call.constant_inputs = {1};
        c.call.n_threads = threads;
        c.fusion.matmul_bias = c.fusion.matmul_nhwc = true;
        c.fusion.matmul_scale = c.fusion.matmul_residual = true;
        c.bias = rnd({n}, 90);
        c.mm_scale = rnd({n, 1, 1}, 91, 0.1f, 1.0f);
        c.mm_residual = rnd({a[0], n, a[1], a[2]}, 92);
        c.stored = {Layout::Plain, Layout::Plain, Layout::Plain, Layout::Plain, Layout::Nhwc};
        v.push_back(c);
    }
    {
        // A classifier head: Flatten -> Gemm with B [N, K] transposed and a bias [N].
        OpCase c = simple("Gemm", "gemm", {rnd({2, 96}, 41), rnd({37, 96}, 42), rnd({37}, 43)},
                          {{"transB", attr_i(1)}}, "2x96 by constant 37x96^T + bias 37",
                          kAccumulation);
        c.call.constant_inputs = {1, 2};
        v.push_back(c);
    }
    {
        OpCase c = simple("Gemm", "gemm", {rnd({40, 5}, 44), rnd({40, 9}, 45), rnd({1, 9}, 46)},
                          {{"transA", attr_i(1)}}, "40x5^T by 40x9 + C 1x9", kAccumulation);
        c.call.constant_inputs = {2};
        v.push_back(c);
    }
    v.push_back(simple("Gemm", "gemm", {rnd({3, 17}, 47), rnd({17, 6}, 48)}, {},
                       "3x17 by 17x6, no C", kAccumulation));
    // Heads large enough to cut into column chunks (B >= 256 KiB): ResNet-style B^T + bias,
    // and A^T by B + C [1, N]; at 1, 2 and 3 threads (3 chunks of 400 columns: 128/128/144).
    for (int threads : {1, 2, 3}) {
        OpCase c = simple("Gemm", "gemm", {rnd({2, 512}, 49), rnd({400, 512}, 50), rnd({400}, 51)},
                          {{"transB", attr_i(1)}},
                          fmt::format("2x512 by constant 400x512^T + bias 400 t{}", threads),
                          kAccumulation);
        c.call.constant_inputs = {1, 2};
        c.call.n_threads = threads;
        v.push_back(c);
        c = simple("Gemm", "gemm", {rnd({256, 5}, 52), rnd({256, 300}, 53), rnd({1, 300}, 54)},
                   {{"transA", attr_i(1)}},
                   fmt::format("256x5^T by 256x300 + C 1x300 t{}", threads), kAccumulation);
        c.call.constant_inputs = {2};
        c.call.n_threads = threads;
        v.push_back(c);
    }
    // One row (batch-1 heads, lowbit's own matrix-vector loops): B^T with K = 15 * 64 + 2 * 16
    // + 8 (every step of the row loop; MobileNetV3-Large's first head is 1x960 by 1280x960^T),
    // B [K, N] with a partial last block of 128 columns, A^T [K, 1]; at 1 and 2 threads
    // (column chunks).
    for (int threads : {1, 2}) {
        OpCase c = simple("Gemm", "gemm",
                          {rnd({1, 1000}, 55), rnd({301, 1000}, 56), rnd({301}, 57)},
                          {{"transB", attr_i(1)}},
                          fmt::format("1x1000 by constant 301x1000^T + bias 301 t{}", threads),
                          kAccumulation);
        c.call.constant_inputs = {1, 2};
        c.call.n_threads = threads;
        v.push_back(c);
        c = simple("Gemm", "gemm", {rnd({1, 700}, 58), rnd({700, 419}, 59), rnd({1, 419}, 60)}, {},
                   fmt::format("1x700 by 700x419 + C 1x419 t{}", threads), kAccumulation);
        c.call.constant_inputs = {2};
        c.call.n_threads = threads;
        v.push_back(c);
        c = simple("Gemm", "gemm", {rnd({300, 1}, 61), rnd({300, 37}, 62)},
                   {{"transA", attr_i(1)}}, fmt::format("300x1^T by 300x37, no C t{}", threads),
                   kAccumulation);
        c.call.n_threads = threads;
        v.push_back(c);
    }
    // ConvNeXt's LayerNorm over channels and GELU (Erf chain) in NHWC-transposed tensors.
    {
        OpCase c = simple("Transpose", "transpose_layout", {rnd({2, 12, 7, 9}, 70)},
                          {{"perm", attr_ints({0, 2, 3, 1})}}, "2x12x7x9 perm 0,2,3,1 of nhwc",
                          kExact);
        c.stored = {Layout::Nhwc};
        v.push_back(c);
    }
    v.push_back(simple("Transpose", "transpose_layout",
                       {random_tensor(DType::Int8, {1, 7, 9, 12}, 71)},
                       {{"perm", attr_ints({0, 3, 1, 2})}}, "int8 1x7x9x12 perm 0,3,1,2 to nhwc",
                       kExact));
    {
        OpCase c = simple("ReduceMean", "reduce_mean_last", {rnd({1, 14, 14, 96}, 72)},
                          {{"axes", attr_ints({-1})}}, "opset 13 axes -1 1x14x14x96 (LayerNorm)",
                          kAccumulation);
        c.call.opset = 13;
        v.push_back(c);
    }
    {
        OpCase c = simple("ReduceMean", "reduce_mean_last", {rnd({3, 5, 40}, 80), i64({1}, {2})},
                          {}, "opset 18 axes input 2 of 3x5x40", kAccumulation);
        c.call.constant_inputs = {1};
        v.push_back(c);
    }
    // ReduceSum over the last axis: RT-DETR's deformable attention ([8, 32, 300, 12] -> keepdims
    // 0, axes as an input since opset 13) and a keepdims opset 11 attribute case.
    {
        OpCase c = simple("ReduceSum", "reduce_sum_last",
                          {rnd({8, 32, 300, 12}, 82, -3.0f, 3.0f), i64({1}, {-1})},
                          {{"keepdims", attr_i(0)}}, "opset 13 axes input -1 keepdims 0 8x32x300x12",
                          kExact);
        c.call.opset = 13;
        c.call.constant_inputs = {1};
        v.push_back(c);
        OpCase d = simple("ReduceSum", "reduce_sum_last", {rnd({3, 5, 41}, 83)},
                          {{"axes", attr_ints({2})}}, "opset 11 axes 2 keepdims 3x5x41", kExact);
        d.call.opset = 11;
        v.push_back(d);
    }
    // ReduceMax: the e2e YOLO head's [1, 2100, 80] -> [1, 2100], a tail of 9, rows with NaN,
    // with -0 / +0 maxima and all -inf (the reference's first-wins order decides those).
    for (const Shape& s : {Shape{1, 2100, 80}, Shape{3, 7, 41}}) {
        Tensor x = rnd(s, 81, -5.0f, 5.0f);
        float* d = x.data<float>();
        const int64_t len = s.back();
        d[3 * len + 5] = NAN;
        for (int64_t j = 0; j < len; ++j) {
            d[4 * len + j] = j % 2 ? 0.0f : -0.0f;
            d[5 * len + j] = j % 3 ? -1.0f : 0.0f;
            d[6 * len + j] = -INFINITY;
        }
        d[7 * len + len - 1] = 99.0f;  // the maximum in the masked tail
        for (int keep : {0, 1}) {
            OpCase c = simple("ReduceMax", "reduce_max_last", {x},
                              {{"axes", attr_ints({-1})}, {"keepdims", Attr::make_int(keep)}},
                              fmt::format("axes -1 keepdims {} {}", keep, dims(s)), kExact);
            c.call.opset = 13;
            v.push_back(c);
        }
    }
    {
        OpCase c = simple("Pow", "pow_square", {rnd({1, 14, 14, 96}, 73), f32({}, {2.0f})}, {},
                          "1x14x14x96 by constant 2", kExact);
        c.call.constant_inputs = {1};
        v.push_back(c);
    }
    // LayerNorm over the last axis fused (fusion.cpp): plain rows of 96 (ConvNeXt's first
    // stage), 37 (masked tail) and 768, with or without affine; between ConvNeXt's Transposes
    // (reads an NHWC tensor; with out_nhwc writes one).
    for (const auto& [shape, in_nhwc, out_nhwc, affine, threads] :
         {std::tuple{Shape{1, 56, 56, 96}, false, false, true, 2},
          std::tuple{Shape{3, 5, 37}, false, false, false, 1},
          std::tuple{Shape{1, 7, 7, 768}, false, true, true, 3},
          std::tuple{Shape{1, 96, 28, 28}, true, false, true, 2},
          std::tuple{Shape{1, 40, 9, 11}, true, true, false, 1}}) {
        auto spec = std::make_shared<cpu::LayerNormSpec>();
        spec->epsilon = 1e-6f;
        spec->in_nhwc = in_nhwc;
        spec->out_nhwc = out_nhwc;
        const Tensor x = rnd(shape, 81, -2.0f, 3.0f);
        OpCase c = in_nhwc ? simple("Transpose", "layer_norm", {x},
                                    {{"perm", attr_ints({0, 2, 3, 1})}}, "", kVectorMath)
                           : simple("ReduceMean", "layer_norm", {x}, {{"axes", attr_ints({-1})}},
                                    "", kVectorMath);
        c.call.opset = 13;
        c.call.n_threads = threads;
        c.stored = {in_nhwc ? Layout::Nhwc : Layout::Plain};
        const int64_t len = in_nhwc ? shape[1] : shape.back();
        if (affine) {
            c.ln_gamma = rnd({len}, 82, 0.5f, 1.5f);
            c.ln_beta = rnd({len}, 83);
        }
        c.ln_out = shape;
        if (in_nhwc) c.ln_out = {shape[0], shape[2], shape[3], shape[1]};
        if (out_nhwc) c.ln_out = {c.ln_out[0], c.ln_out[3], c.ln_out[1], c.ln_out[2]};
        c.name =
            fmt::format("LayerNorm {}{}{}{} t{}", dims(shape), in_nhwc ? " (Transpose in)" : "",
                        out_nhwc ? " (Transpose out)" : "", affine ? " +affine" : "", threads);
        c.layer_norm = spec;
        c.fusion.layer_norm = spec.get();
        v.push_back(c);
    }
    v.push_back(unary("Erf", "erf", {1, 14, 14, 384}, Layout::Plain, 2, kVectorMath, 74));
    v.push_back(unary("Erf", "erf", {1, 16, 9, 7}, Layout::Nhwc, 1, kVectorMath, 75));
    // GELU's Erf chain fused (fusion.cpp): the node is its Div by sqrt 2, the step reads x only.
    for (const auto& [shape, stored, threads] :
         {std::tuple{Shape{1, 14, 14, 1536}, Layout::Plain, 2},
          std::tuple{Shape{1, 16, 9, 7}, Layout::Nhwc, 1}, std::tuple{Shape{3, 37}, Layout::Plain, 2}}) {
        OpCase c = simple("Div", "gelu", {rnd(shape, 80, -5.0f, 5.0f), f32({}, {1.41421356f})}, {},
                          fmt::format("GELU chain {} {} t{}", dims(shape), layout_name(stored), threads),
                          kVectorMath);
        c.call.constant_inputs = {1};
        c.call.n_threads = threads;
        c.stored = {stored};
        c.fusion.gelu = true;
        c.fusion.gelu_div = 1.41421356f;
        v.push_back(c);
    }
    v.push_back(binary("Sub", {1, 14, 14, 96}, {1, 14, 14, 1}, Layout::Plain, false, 76));
    v.push_back(binary("Div", {2, 5, 33}, {2, 5, 1}, Layout::Plain, false, 77));
    v.push_back(binary("Mul", {1, 14, 14, 96}, {96}, Layout::Plain, true, 78));
    v.push_back(binary("Add", {1, 49, 768}, {1, 1, 768}, Layout::Plain, true, 79));
    v.push_back(simple("Softmax", "softmax", {rnd({1, 2, 24, 24}, 36, -5.0f, 5.0f)},
                       {{"axis", attr_i(-1)}}, "axis -1 1x2x24x24", kVectorMath));
    v.push_back(simple("Softmax", "softmax", {rnd({1, 4, 16, 42}, 37, -5.0f, 5.0f)},
                       {{"axis", attr_i(1)}}, "axis 1 1x4x16x42 (DFL)", kVectorMath));
    // GridSample (RT-DETR's deformable attention: bilinear, zeros, align_corners 0): grid
    // points up to 0.3 beyond [-1, 1] (taps outside the image), a few exactly on pixel
    // centres and edges, and NaN / infinite / huge coordinates (the reference's scalar path).
    {
        Tensor grid = rnd({2, 37, 5, 2}, 41, -1.3f, 1.3f);
        float* g = grid.data<float>();
        const float special[] = {-1.0f, 1.0f, 0.0f, std::nanf(""), INFINITY, -INFINITY, 3.0e7f,
                                 -1.0f / 17.0f};
        for (size_t i = 0; i < std::size(special); ++i) g[7 * i + 1] = special[i];
        for (const char* pad : {"zeros", "border"}) {
            for (int64_t ac : {0, 1}) {
                v.push_back(simple("GridSample", "grid_sample",
                                   {rnd({2, 6, 9, 17}, 40), grid},
                                   {{"mode", attr_s("bilinear")},
                                    {"padding_mode", attr_s(pad)},
                                    {"align_corners", attr_i(ac)}},
                                   fmt::format("bilinear {} align_corners {} 2x6x9x17 by 2x37x5",
                                               pad, ac),
                                   kGridSample));
                v.back().call.opset = 16;
            }
        }
        OpCase big = simple("GridSample", "grid_sample",
                            {rnd({8, 32, 40, 40}, 42), rnd({8, 300, 4, 2}, 43, -1.1f, 1.1f)},
                            {}, "opset 20 linear default attrs 8x32x40x40 by 8x300x4 (RT-DETR)",
                            kGridSample);
        big.call.opset = 20;
        big.call.attrs = {{"mode", attr_s("linear")}};
        v.push_back(big);
    }
    v.push_back(simple("Transpose", "transpose", {rnd({1, 144, 37}, 38)},
                       {{"perm", attr_ints({0, 2, 1})}}, "1x144x37 perm 0,2,1", kExact));
    v.push_back(simple("Transpose", "transpose", {rnd({2, 3, 1, 5, 7}, 39)},
                       {{"perm", attr_ints({3, 0, 4, 2, 1})}}, "2x3x1x5x7 perm 3,0,4,2,1",
                       kExact));
    v.push_back(simple("Transpose", "transpose", {rnd({33, 31}, 40)}, {}, "33x31 default perm",
                       kExact));
    return v;
}

// float16 nodes of float32-only fast ops run the float32 kernel on widened inputs.
std::vector<OpCase> float16_cases() {
    std::vector<OpCase> v;
    auto h = [](const Shape& s, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
        return random_tensor(DType::Float16, s, seed, lo, hi);
    };
    v.push_back(simple("MatMul", "matmul", {h({2, 24, 42}, 50), h({2, 42, 24}, 51)}, {},
                       "float16 2x24x42 by 2x42x24 (via float32)", kHalf));
    v.push_back(simple("Softmax", "softmax", {h({4, 64}, 52, -5.0f, 5.0f)}, {{"axis", attr_i(-1)}},
                       "float16 axis -1 4x64 (via float32)", kHalf));
    {
        OpCase c = simple("MaxPool", "maxpool_nhwc", {h({1, 8, 12, 12}, 53)},
                          {{"kernel_shape", attr_ints({3, 3})}, {"pads", attr_ints({1, 1, 1, 1})}},
                          "float16 3x3 s1 pad 1 nhwc (via float32)", kExact);
        c.stored = {Layout::Nhwc};
        v.push_back(c);
    }
    {
        OpCase c = simple("Resize", "resize_nhwc", {h({1, 4, 6, 5}, 54), Tensor(),
                          f32({4}, {1, 1, 2, 2})},
                          {{"mode", attr_s("nearest")}}, "float16 nearest x2 nhwc (via float32)",
                          kExact);
        c.call.constant_inputs = {2};
        c.stored = {Layout::Nhwc};
        v.push_back(c);
    }
    return v;
}

// Int8 data moves (qmove_int8): MaxPool and channel Concat on int8 codes, requantized by table
// where an input's scale differs from the QuantizeLinear's, and a float32 Concat input quantized
// as QuantizeLinear does; bit-exact against DequantizeLinear -> op -> QuantizeLinear.
OpCase qmove_case(const std::string& op, const std::vector<Shape>& shapes,
                  const std::vector<float>& scales, float y_scale,
                  std::map<std::string, Attr> attrs, const std::string& what, uint32_t seed) {
    OpCase c = simple(op, "qmove_int8", {}, std::move(attrs), what, kExact);
    auto spec = std::make_shared<cpu::QuantMoveSpec>();
    spec->in_scale = scales;
    spec->y_scale = y_scale;
    for (size_t k = 0; k < shapes.size(); ++k) {
        if (scales[k] > 0.0f) {
            Tensor q = random_tensor(DType::Int8, shapes[k], seed + static_cast<uint32_t>(k));
            c.call.inputs.push_back(dequantized(q, {scales[k]}));
            c.in_codes.push_back(q);
        } else {
            c.call.inputs.push_back(rnd(shapes[k], seed + static_cast<uint32_t>(k), -3.0f, 3.0f));
            c.in_codes.emplace_back();
        }
        c.stored.push_back(Layout::Nhwc);
    }
    c.qmove = spec;
    c.fusion.qmove = spec.get();
    return c;
}

std::vector<OpCase> qmove_cases() {
    std::vector<OpCase> v;
    const std::map<std::string, Attr> sppf = {{"kernel_shape", attr_ints({5, 5})},
                                              {"strides", attr_ints({1, 1})},
                                              {"pads", attr_ints({2, 2, 2, 2})}};
    v.push_back(qmove_case("MaxPool", {{1, 16, 20, 20}}, {0.02f}, 0.02f, sppf,
                           "int8 5x5 s1 pad 2 (SPPF) 16x20x20, same scale", 900));
    v.push_back(qmove_case("MaxPool", {{1, 16, 20, 20}}, {0.02f}, 0.031f, sppf,
                           "int8 5x5 s1 pad 2 16x20x20, requantized", 910));
    v.push_back(qmove_case("Concat", {{1, 8, 10, 12}, {1, 24, 10, 12}, {1, 5, 10, 12}},
                           {0.02f, 0.013f, 0.0f}, 0.025f, {{"axis", attr_i(1)}},
                           "int8 channels 8+24+5(float32) 10x12, requantized", 920));
    return v;
}

std::vector<OpCase> all_cases() {
    std::vector<OpCase> v;
    for (auto* make : {conv_cases, deconv_cases, qconv_cases, qmove_cases, qdq_cases, elementwise_cases,
                       nhwc_cases, plain_cases, float16_cases}) {
        for (OpCase& c : make()) v.push_back(std::move(c));
    }
    return v;
}

// ---- the reference side --------------------------------------------------------------------

// The node's reference kernel and, for a fused Conv, the Sigmoid, Mul and Add kernels the fusion
// replaces; each prepared once, their intermediate tensors allocated once (perf times run()).
class Reference {
public:
    Status prepare(const OpCase& c) {
        LOWBIT_TRY(add(c.call));
        if (c.fusion.bn) {
            std::vector<Tensor> in = {last()};
            in.insert(in.end(), c.bn_params.begin(), c.bn_params.end());
            KernelCall bn{"BatchNormalization", in};
            bn.attrs = {{"epsilon", attr_f(c.bn_epsilon)}};
            LOWBIT_TRY(add(bn));
        }
        if (c.fusion.relu) LOWBIT_TRY(add(KernelCall{"Relu", {last()}}));
        if (c.fusion.hardswish) {
            const Tensor y = last();
            KernelCall hs{"HardSigmoid", {y}};
            hs.attrs = {{"alpha", attr_f(c.fusion.hs_alpha)}, {"beta", attr_f(c.fusion.hs_beta)}};
            LOWBIT_TRY(add(hs));
            LOWBIT_TRY(add(KernelCall{"Mul", {y, last()}}));
        }
        if (c.fusion.silu) {
            const Tensor y = last();
            LOWBIT_TRY(add(KernelCall{"Sigmoid", {y}}));
            LOWBIT_TRY(add(KernelCall{"Mul", {y, last()}}));
        }
        if (c.fusion.residual) LOWBIT_TRY(add(KernelCall{"Add", {last(), c.residual}}));
        if (c.fusion.relu_after) LOWBIT_TRY(add(KernelCall{"Relu", {last()}}));
        if (c.fusion.matmul_bias) LOWBIT_TRY(add(KernelCall{"Add", {last(), c.bias}}));
        if (c.fusion.matmul_nhwc) {
            LOWBIT_TRY(add(KernelCall{"Transpose", {last()}, {{"perm", attr_ints({0, 3, 1, 2})}}}));
        }
        if (c.fusion.matmul_scale) LOWBIT_TRY(add(KernelCall{"Mul", {last(), c.mm_scale}}));
        if (c.fusion.matmul_residual) LOWBIT_TRY(add(KernelCall{"Add", {last(), c.mm_residual}}));
        if (c.fusion.gelu) {  // the node is Div(x, c): -> Erf -> Add(., 1) -> Mul(x, .) -> Mul(., 0.5)
            const Tensor& x = c.call.inputs[0];
            LOWBIT_TRY(add(KernelCall{"Erf", {last()}}));
            LOWBIT_TRY(add(KernelCall{"Add", {last(), f32({}, {1.0f})}}));
            LOWBIT_TRY(add(KernelCall{"Mul", {x, last()}}));
            LOWBIT_TRY(add(KernelCall{"Mul", {last(), f32({}, {0.5f})}}));
        }
        // The LayerNorm chain after its first node: Sub -> Pow 2 -> ReduceMean -> Add eps ->
        // Sqrt -> Div [-> Mul gamma] [-> Add beta] [-> Transpose back].
        if (c.layer_norm) {
            const std::map<std::string, Attr> axes = {{"axes", attr_ints({-1})}};
            const Tensor x = c.layer_norm->in_nhwc ? last() : c.call.inputs[0];
            if (c.layer_norm->in_nhwc) LOWBIT_TRY(add(KernelCall{"ReduceMean", {x}, axes, 13}));
            LOWBIT_TRY(add(KernelCall{"Sub", {x, last()}}));
            const Tensor d = last();
            LOWBIT_TRY(add(KernelCall{"Pow", {d, f32({}, {2.0f})}}));
            LOWBIT_TRY(add(KernelCall{"ReduceMean", {last()}, axes, 13}));
            LOWBIT_TRY(add(KernelCall{"Add", {last(), f32({}, {c.layer_norm->epsilon})}}));
            LOWBIT_TRY(add(KernelCall{"Sqrt", {last()}}));
            LOWBIT_TRY(add(KernelCall{"Div", {d, last()}}));
            if (!c.ln_gamma.empty()) LOWBIT_TRY(add(KernelCall{"Mul", {last(), c.ln_gamma}}));
            if (!c.ln_beta.empty()) LOWBIT_TRY(add(KernelCall{"Add", {last(), c.ln_beta}}));
            if (c.layer_norm->out_nhwc) {
                LOWBIT_TRY(
                    add(KernelCall{"Transpose", {last()}, {{"perm", attr_ints({0, 3, 1, 2})}}}));
            }
        }
        if ((c.quant && c.quant->out_q) || c.qmove) {
            Tensor scale(DType::Float32, {});
            scale.data<float>()[0] = c.qmove ? c.qmove->y_scale : c.quant->y_scale;
            Tensor zp(c.qmove ? DType::Int8 : c.quant->codes, {});
            std::memset(zp.raw(), 0, zp.nbytes());
            LOWBIT_TRY(add(KernelCall{"QuantizeLinear", {last(), scale, zp}}));
        }
        return Status::ok();
    }
    Status run(ThreadPool& pool) {
        for (Stage& s : stages_) {
            if (!s.p.all_values) LOWBIT_TRY(run_prepared(s.p, s.call.inputs, s.outs, pool));
        }
        return Status::ok();
    }
    const std::vector<Tensor>& outputs() const { return stages_.back().outs; }
    // The first stage's prepared outputs: the node's outputs as the planner sees them.
    const std::vector<TensorInfo>& node_outputs() const { return stages_.front().p.outputs; }

private:
    struct Stage {
        KernelCall call;
        PreparedCall p;
        std::vector<Tensor> outs;
    };
    Status add(KernelCall call) {
        Stage& s = stages_.emplace_back();
        s.call = std::move(call);
        LOWBIT_TRY(prepare_call(s.call, s.p));
        if (s.p.all_values) {
            for (const TensorInfo& o : s.p.outputs) s.outs.push_back(*o.value);
        } else {
            s.outs = allocate_outputs(s.p);
        }
        return Status::ok();
    }
    Tensor last() const { return stages_.back().outs.front(); }

    std::vector<Stage> stages_;
};

// ---- the fast side -------------------------------------------------------------------------

// The plan CpuBackend::choose() makes for the case, with inputs converted to the planned
// layouts; run() leaves plain outputs. Without a fast op (the ref_elementwise row) the node's
// reference kernel runs on the tensors in the planned layouts, as the executor does.
class Fast {
public:
    Status prepare(const OpCase& c, const std::vector<TensorInfo>& out_info) {
        backend_ = std::make_unique<CpuBackend>(c.call.n_threads);
        tasks_ = std::make_unique<ThreadPool>(c.call.n_threads);
        node_ = make_node(c.call);
        std::vector<Tensor> plain = c.call.inputs;
        if (c.fusion.residual) {
            plain.resize(3);
            plain.push_back(c.quant && c.quant->residual_q ? c.r_codes : c.residual);
        }
        if (c.quant) plain[0] = c.x_codes;  // the int8 step reads the codes
        if (c.fusion.gelu) plain.resize(1);  // the fused GELU step reads x alone
        if (c.fusion.matmul_bias) plain.push_back(c.bias);
        if (c.layer_norm) plain = {plain[0], c.ln_gamma, c.ln_beta};
        if (c.fusion.matmul_scale || c.fusion.matmul_residual) {
            plain.push_back(c.mm_scale);
            plain.push_back(c.mm_residual);
        }
        for (size_t k = 0; c.qmove && k < c.in_codes.size(); ++k) {
            if (!c.in_codes[k].empty()) plain[k] = c.in_codes[k];
        }
        std::vector<Operand> ins(plain.size()), outs(out_info.size());
        for (size_t i = 0; i < plain.size(); ++i) {
            if (plain[i].empty()) continue;
            ins[i].dtype = plain[i].dtype();
            ins[i].shape = plain[i].shape();
            const auto& k = c.call.constant_inputs;
            if (std::find(k.begin(), k.end(), i) != k.end()) {
                ins[i].constant = &c.call.inputs[i];
            } else if (i < c.stored.size()) {
                ins[i].layout = c.stored[i];
            }
        }
        for (size_t o = 0; o < out_info.size(); ++o) {
            outs[o].dtype = out_info[o].dtype;
            outs[o].shape = out_info[o].shape;
        }
        if (c.fusion.matmul_scale) ins[3].constant = &c.mm_scale;
        if (c.layer_norm) {  // gamma and beta are constants; the step writes the chain's result
            for (size_t i = 1; i < 3; ++i) {
                if (!plain[i].empty()) ins[i].constant = i == 1 ? &c.ln_gamma : &c.ln_beta;
            }
        }
        std::vector<std::string> warnings;
        plan_ = backend_->choose(node_, c.call.opset, ins, outs, c.fusion, warnings);
        if (c.out_nhwc) {
            if (!plan_.op || !plan_.op->write_output_nhwc()) {
                return unsupported("the op does not write its output channels-last");
            }
            plan_.out_layouts[0] = Layout::Nhwc;
        }
        for (size_t i = 0; i < plain.size(); ++i) {
            in_.push_back(laid_out(plain[i], plan_.in_layouts[i]));
        }
        for (size_t o = 0; o < outs.size(); ++o) {
            const DType dt = c.qmove                    ? DType::Int8
                             : c.quant && c.quant->out_q ? c.quant->codes
                                                         : outs[o].dtype;
            Shape shape = c.layer_norm ? c.ln_out : outs[o].shape;
            if (c.fusion.matmul_nhwc) shape = {shape[0], shape[3], shape[1], shape[2]};
            stored_out_.emplace_back(dt, shape);
            plain_out_.emplace_back(dt, shape);
        }
        if (!plan_.op && !plan_.entry.empty()) {
            KernelCall ref = c.call;
            ref.inputs = in_;
            LOWBIT_TRY(prepare_call(ref, ref_));
            ref_pool_ = std::make_unique<ThreadPool>(c.call.n_threads);
        }
        return Status::ok();
    }
    std::string_view entry() const { return plan_.entry; }
    std::string describe() const {
        return plan_.op ? plan_.op->describe() : plan_.entry.empty() ? "none" : "reference";
    }
    // The fast op alone (no layout conversions): what perf times.
    Status run_op() {
        if (plan_.op) return plan_.op->run(in_, stored_out_, *tasks_);
        if (ref_.kernel) return run_prepared(ref_, in_, stored_out_, *ref_pool_);
        return unsupported("no kernel-table row took the node");
    }
    Status run() {
        LOWBIT_TRY(run_op());
        for (size_t o = 0; o < stored_out_.size(); ++o) {
            convert_layout(stored_out_[o], plan_.out_layouts[o], plain_out_[o], Layout::Plain,
                           *tasks_);
        }
        return Status::ok();
    }
    const std::vector<Tensor>& outputs() const { return plain_out_; }

private:
    Tensor laid_out(const Tensor& t, Layout l) const {
        if (t.empty() || l == Layout::Plain) return t;
        Tensor s(t.dtype(), t.shape());
        convert_layout(t, Layout::Plain, s, l, *tasks_);
        return s;
    }

    std::unique_ptr<CpuBackend> backend_;
    std::unique_ptr<ThreadPool> tasks_;
    std::unique_ptr<ThreadPool> ref_pool_;
    Node node_;
    FastPlan plan_;
    PreparedCall ref_;
    std::vector<Tensor> in_, stored_out_, plain_out_;
};

// ---- comparing and timing ------------------------------------------------------------------

// max |a - b| / max |b| over all elements (any numeric dtype, read as double); with tol 0 the
// bytes must be equal, so -0 vs 0 or a differing NaN payload also counts.
double case_error(const Tensor& a, const Tensor& b, double tol) {
    if (a.dtype() != b.dtype() || a.shape() != b.shape()) return INFINITY;
    double mx = 1e-6, d = 0;
    for (int64_t i = 0; i < b.numel(); ++i) {
        const double x = tensor_get_f64(a, i), y = tensor_get_f64(b, i);
        mx = std::max(mx, std::fabs(y));
        d = std::isnan(x) != std::isnan(y) ? INFINITY : std::max(d, std::fabs(x - y));
    }
    double err = d / mx;
    if (tol == 0 && err == 0 && std::memcmp(a.raw(), b.raw(), a.nbytes()) != 0) err = 1e-30;
    return err;
}

template <typename F>
double median_us(int repeats, F&& fn) {
    std::vector<double> t;
    for (int r = 0; r < repeats; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        fn();
        t.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0)
                        .count());
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

struct Setup {
    Reference ref;
    Fast fast;
    std::string problem;  // why the case cannot run ("" when it can)
};

void set_up(const OpCase& c, Setup& s) {
    Status st = s.ref.prepare(c);
    if (!st.is_ok()) {
        s.problem = "reference prepare: " + st.message();
        return;
    }
    st = s.fast.prepare(c, s.ref.node_outputs());
    if (!st.is_ok()) {
        s.problem = "fast prepare: " + st.message();
    } else if (s.fast.entry() != c.entry) {
        s.problem = fmt::format("planned by row '{}', expected '{}'", s.fast.entry(), c.entry);
    }
}

bool test_case(const OpCase& c) {
    Setup s;
    set_up(c, s);
    ThreadPool pool(c.call.n_threads);
    if (s.problem.empty()) {
        const Status a = s.ref.run(pool), b = s.fast.run();
        if (!a.is_ok()) s.problem = "reference run: " + a.message();
        if (!b.is_ok()) s.problem = "fast run: " + b.message();
    }
    if (!s.problem.empty()) {
        fmt::print("FAIL  {} [{}]: {}\n", c.name, c.entry, s.problem);
        return false;
    }
    double err = 0;
    for (size_t o = 0; o < s.ref.outputs().size(); ++o) {
        err = std::max(err, case_error(s.fast.outputs()[o], s.ref.outputs()[o], c.tol));
    }
    // A second run() of the planned op, allocations counted: the int8 / FP8 Q/DQ and data-move
    // kernels must not allocate once planned (their buffers are sized at plan time). The Q/DQ
    // convs are only reported: their remaining allocations are oneDNN 2.6's own argument map,
    // built inside dnnl_primitive_execute (dnnl_state.h execute_conv).
    g_allocs = 0;
    g_count_allocs = true;
    const Status again = s.fast.run_op();
    g_count_allocs = false;
    const int64_t allocs = g_allocs;
    const bool must_not_allocate = c.entry.starts_with("qdq_") || c.entry.starts_with("qmove_");
    const bool ok = err <= c.tol && again.is_ok() && (allocs == 0 || !must_not_allocate);
    fmt::print("{}  {} [{}: {}] max_err {:.3g} tol {:.3g}{}\n", ok ? "OK  " : "FAIL", c.name,
               c.entry, s.fast.describe(), err, c.tol,
               allocs ? fmt::format(" ({} allocations in run())", allocs) : std::string());
    return ok;
}

bool perf_case(const OpCase& c, int repeats) {
    Setup s;
    set_up(c, s);
    if (!s.problem.empty()) {
        fmt::print("SKIP  {}: {}\n", c.name, s.problem);
        return true;
    }
    ThreadPool pool(c.call.n_threads);
    const double fast = median_us(repeats, [&] { (void)s.fast.run_op(); });
    const double ref = median_us(repeats, [&] { (void)s.ref.run(pool); });
    fmt::print("{:<70} fast {:>10.1f} us  ref {:>10.1f} us  x{:.1f}\n", c.name, fast, ref,
               ref / std::max(fast, 1e-3));
    return true;
}

// Every kernel-table row must be the expected row of some case (all cases, not only the
// filtered ones), so that a new row without a case fails here.
bool check_coverage(const std::vector<OpCase>& cases) {
    bool ok = true;
    size_t covered = 0;
    for (const cpu::FastEntry& e : cpu::fast_kernel_table()) {
        const bool has = std::any_of(cases.begin(), cases.end(),
                                     [&](const OpCase& c) { return c.entry == e.name; });
        covered += has;
        if (!has) fmt::print("FAIL  kernel-table row '{}' has no case\n", e.name);
        ok = ok && has;
    }
    fmt::print("coverage: {} of {} kernel-table rows have cases\n", covered,
               cpu::fast_kernel_table().size());
    return ok;
}

int usage() {
    fmt::print(stderr, "usage: lowbit_ops [test|perf|list] [-o OP] [-n TEXT] [-r REPEATS]\n");
    return 2;
}

int run_main(int argc, char** argv) {
    std::string mode = "test", op, text;
    int repeats = 20;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const bool has_value = i + 1 < argc;
        if (a == "test" || a == "perf" || a == "list") {
            mode = a;
        } else if (a == "-o" && has_value) {
            op = argv[++i];
        } else if (a == "-n" && has_value) {
            text = argv[++i];
        } else if (a == "-r" && has_value) {
            repeats = std::max(1, std::atoi(argv[++i]));
        } else {
            return usage();
        }
    }
    const std::vector<OpCase> cases = all_cases();
    if (mode == "list") {
        for (const cpu::FastEntry& e : cpu::fast_kernel_table()) {
            fmt::print("row   {:<16} {}\n", e.name, e.runs);
        }
    }
    size_t n = 0, failed = 0;
    for (const OpCase& c : cases) {
        if ((!op.empty() && c.call.op != op) || c.name.find(text) == std::string::npos) continue;
        ++n;
        if (mode == "list") {
            fmt::print("case  {} [{}] tol {:.3g}\n", c.name, c.entry, c.tol);
        } else if (mode == "perf") {
            perf_case(c, repeats);
        } else if (!test_case(c)) {
            ++failed;
        }
    }
    const bool covered = check_coverage(cases);
    if (mode == "test") fmt::print("{} cases, {} failed\n", n, failed);
    if (n == 0) fmt::print("no case matches the filter\n");
    return failed == 0 && covered && n > 0 ? 0 : 1;
}

}  // namespace
}  // namespace lowbit::test

// Heap allocations through operator new while `counting` is set (issue 12: no allocation in a
// low-precision kernel's run()). Replacing the global operator new is the only way to see them;
// it lives in this test program only. malloc calls (oneDNN's own scratch) are not seen.
namespace lowbit::test {
std::atomic<bool> g_count_allocs{false};
std::atomic<int64_t> g_allocs{0};
}  // namespace lowbit::test

namespace {
void* counted_alloc(std::size_t n, std::size_t align) {
    if (lowbit::test::g_count_allocs.load(std::memory_order_relaxed)) {
        lowbit::test::g_allocs.fetch_add(1, std::memory_order_relaxed);
    }
    if (n == 0) n = 1;
    void* p = align > alignof(std::max_align_t)
                  ? std::aligned_alloc(align, (n + align - 1) / align * align)
                  : std::malloc(n);
    if (!p) throw std::bad_alloc();
    return p;
}
}  // namespace

void* operator new(std::size_t n) {
    return counted_alloc(n, 0);
}
void* operator new[](std::size_t n) {
    return counted_alloc(n, 0);
}
void* operator new(std::size_t n, std::align_val_t a) {
    return counted_alloc(n, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t n, std::align_val_t a) {
    return counted_alloc(n, static_cast<std::size_t>(a));
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete[](void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
    std::free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
    std::free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
    std::free(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
    std::free(p);
}

int main(int argc, char** argv) {
    return lowbit::test::run_main(argc, argv);
}
