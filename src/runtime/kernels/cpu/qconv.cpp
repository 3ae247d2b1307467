// The int8 Q/DQ conv step (fast_ops.h QuantConvSpec; runtime/fusion.h matches the pattern):
//   DequantizeLinear(x_q, s_x) -> Conv(., DequantizeLinear(w_q, s_w[m]), b) [-> SiLU]
//   [-> Add(., R)] [-> QuantizeLinear(., s_y)]
// as one oneDNN int8 convolution. oneDNN sums x_q * w_q exactly in int32 (VNNI/AMX) and
// scales the sums by s_x * s_w[m] (its per-output-channel output scales) into float32; the
// epilogue then adds the bias, applies SiLU, adds the residual (float32, or int8 codes times
// their scale when R's DequantizeLinear is deferred) and either keeps float32 or quantizes as
// QuantizeLinear does: round_half_even(v / s_y) saturated to [-128, 127] (one float32
// division, like the reference kernel). The only difference from the float simulation is the
// order of the float rounding in the sums (the simulation's float32 conv of the dequantized
// values rounds each partial sum); tests/py/test_lowp_kernels.py bounds it by one step.
//
// x_q, R and the output are stored NHWC. The weights' int8 codes are reordered once, at plan
// time, into oneDNN's format (with the compensation for its signed source). INT4 weights (W4A8,
// row qconv_w4a8) run the same kernel: lowbit holds INT4 one sign-extended value a byte, so
// their codes are int8 codes in [-8, 7], and the int32 sums stay exact. Only exact int8
// kernels are used: without VNNI/AMX oneDNN sums pairs of u8*s8 products in int16 with
// saturation, so the factory refuses such kernels (and reference implementations) and says why.
// Narrow convs take their sums from lowbit's direct VNNI kernel instead (qconv_direct.h, where
// it measured faster than oneDNN's), depthwise convs from its direct depthwise kernel
// (qconv_dw.h): exact sums scaled the same way, so the same bits; their weights are then
// packed for that kernel only.
//
// Threads and cache: the output rows are cut into chunks (each a one-thread primitive on a
// band of rows, as conv.cpp does); a chunk's float32 sums go to a per-thread buffer sized to
// stay in L2, and the epilogue reads them from there. A small conv on a map of a few rows is
// cut into ranges of output channels instead (plan_chunks says when): each such chunk
// is a one-thread primitive over all rows with its slice of the weights and of the output
// scales, and its epilogue reads its slice of the bias and writes its channels. The epilogue is
// per output channel, so either cut gives one thread's output bit for bit
// (test_lowp_kernels.py checks it).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <numeric>
#include <tuple>
#include <utility>

#include "runtime/kernels/cpu/conv_routing.h"
#include "runtime/kernels/cpu/dnnl_state.h"
#include "runtime/kernels/cpu/ops.h"
#include "runtime/kernels/cpu/qconv_direct.h"
#include "runtime/kernels/cpu/qconv_dw.h"
#include "runtime/kernels/cpu/qdq_math.h"
#include "runtime/kernels/cpu/vmath.h"

namespace lowbit::cpu {
namespace {

using dnnl::memory;
using Tag = dnnl::memory::format_tag;
using DT = dnnl::memory::data_type;

// A chunk's float32 sums: at most a quarter of this CPU's 1 MiB L2.
constexpr double kChunkAccBytes = 256.0 * 1024;
// Below this much work per chunk the call overhead dominates. int8 runs ~4x float32's rate
// (conv.cpp's kFlopsPerSecond, the rate measured on the bundled model's small layers; at
// 800e9 most of them ran as one chunk, on one thread).
constexpr double kMinChunkSeconds = 20e-6;
constexpr double kOpsPerSecond = 200e9;
// The epilogue's cost per output value (bias, quantization; SiLU adds most of it), measured in
// a microbenchmark of epilogue_run over L2-resident sums on this machine: 0.3 ns without SiLU,
// 0.45-1.0 ns with it (the machine's speed changes from hour to hour). Depthwise convs are
// mostly epilogue (9 multiply-adds an output): counting only the multiply-adds left each
// depthwise int8 conv of the bundled YOLOv10m as one chunk, so at 2 threads they took as long
// as at one (0.57 ms a run for the 18 of them) while the other thread waited.
constexpr double kEpilogueSeconds = 0.25e-9;
constexpr double kSiluSeconds = 0.4e-9;
// Row chunks whose busiest thread has this much more than an even share of the rows count as
// uneven (plan_chunks): measured per-task CPU time at 2 threads, channel chunks beat rows on a
// 5-row map (3:2 rows, 0.0107 vs 0.0118 ms) but not on 7 or 9 rows (4:3, 5:4).
constexpr double kMaxRowImbalance = 1.15;
// The profile's names of the direct kernels (qconv_direct.h, qconv_dw.h).
constexpr const char* kDirectImpl = "direct:avx512_vnni";
constexpr const char* kDirectDwImpl = "direct_dw:avx512";

struct Chunk {
    int64_t oh0 = 0, oh1 = 0;  // output rows
    int64_t ih0 = 0;           // first input row read
    size_t part = 0;
    int64_t oc0 = 0, oc1 = 0;  // output channels
    memory src, dst;           // NHWC views, pointed at the tensors at run time
};

// The epilogue in one pass: each sum gets the bias, SiLU, the residual and the output
// quantization in registers, in the graph's order, with the float32 operations of vmath.h's
// silu_f32 and qdq_math.h's quantize_s8 (an int8 residual is one fused multiply-add, code *
// scale + value, as GCC contracted the separate loop this replaced), so each value is the
// same bits as in separate passes. The sums are read once from the chunk buffer and the
// result written once.
// The step's scales, with the output scale's vector form made once at plan time (the epilogue
// runs once a pixel for channel chunks).
struct EpilogueArgs {
    EpilogueArgs(float r, float y) : r_scale(r), y_scale(y) {}
    float r_scale;  // int8 residual codes' scale
    float y_scale;  // output scale (int8 outputs)
#if defined(__AVX512F__)
    QScale16 ys{y_scale};
    __m512 rs = _mm512_set1_ps(r_scale);
#endif
};

// n consecutive values: a[i] is the sum, bias[i] its channel's bias, r[i] its residual, y[i]
// its result (float32, may be a itself, or int8 codes). kRes: 0 none, 1 float32, 2 int8 codes.
template <bool kBias, bool kSilu, int kRes, bool kOutQ>
void epilogue_run(const EpilogueArgs& e, const float* a, const float* bias, const void* r, void* y,
                  int64_t n) {
    int64_t i = 0;
#if defined(__AVX512F__)
    for (; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (n - i)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(m, a + i);
        if constexpr (kBias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, bias + i));
        if constexpr (kSilu) v = _mm512_mul_ps(v, sigmoid512(v));
        if constexpr (kRes == 1) {
            v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, static_cast<const float*>(r) + i));
        } else if constexpr (kRes == 2) {
            const __m128i codes = _mm_maskz_loadu_epi8(m, static_cast<const int8_t*>(r) + i);
            v = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(codes)), e.rs, v);
        }
        if constexpr (kOutQ) {
            _mm512_mask_cvtsepi32_storeu_epi8(static_cast<int8_t*>(y) + i, m,
                                              quantize16_s32(v, e.ys));
        } else {
            _mm512_mask_storeu_ps(static_cast<float*>(y) + i, m, v);
        }
    }
#endif
    for (; i < n; ++i) {
        float v = a[i];
        if constexpr (kBias) v += bias[i];
        if constexpr (kSilu) silu_f32(&v, &v, 1);
        if constexpr (kRes == 1) v += static_cast<const float*>(r)[i];
        if constexpr (kRes == 2) {
            v += static_cast<float>(static_cast<const int8_t*>(r)[i]) * e.r_scale;
        }
        if constexpr (kOutQ) {
            quantize_s8(&v, static_cast<int8_t*>(y) + i, 1, e.y_scale);
        } else {
            static_cast<float*>(y)[i] = v;
        }
    }
}

using EpilogueFn = void (*)(const EpilogueArgs&, const float*, const float*, const void*, void*,
                            int64_t);

// The instance for a step's flags: index bias + 2 silu + 4 residual + 12 out_q.
template <size_t... I>
constexpr std::array<EpilogueFn, sizeof...(I)> epilogue_table(std::index_sequence<I...>) {
    return {
        &epilogue_run<(I & 1) != 0, (I & 2) != 0, static_cast<int>((I / 4) % 3), (I / 12) != 0>...};
}

EpilogueFn pick_epilogue(bool bias, bool silu, int residual, bool out_q) {
    static constexpr auto table = epilogue_table(std::make_index_sequence<24>());
    return table[static_cast<size_t>(bias) + 2 * static_cast<size_t>(silu) +
                 4 * static_cast<size_t>(residual) + 12 * static_cast<size_t>(out_q)];
}

class QConvOp final : public FastOp {
public:
    explicit QConvOp(DnnlState& dnnl) : dnnl_(dnnl) {}

    // Returns a reason when the op cannot run the match (the step then falls back).
    std::string init(const Node& node, std::span<const Operand> ins, const Operand& conv_out,
                     const ConvFusion& fusion, int n_threads) {
        const QuantConvSpec& q = *fusion.quant;
        x_ = ins[0].shape;
        y_ = conv_out.shape;
        const Shape& wt = q.w_codes->shape();
        group_ = node.attr_int("group", 1);
        if (!window_2d(node, x_, y_, {wt[2], wt[3]}, h_, w_)) return "conv attributes";
        silu_ = fusion.silu;
        residual_ = fusion.residual;
        residual_q_ = q.residual_q;
        r_scale_ = q.r_scale;
        out_q_ = q.out_q;
        y_scale_ = q.y_scale;
        n_threads_ = std::max(1, n_threads);
        if (ins.size() > 2 && ins[2].present()) {
            const Tensor& b = *ins[2].constant;
            bias_.assign(b.data<float>(), b.data<float>() + b.numel());
        }
        epilogue_ =
            pick_epilogue(!bias_.empty(), silu_, residual_ ? (residual_q_ ? 2 : 1) : 0, out_q_);
        epi_args_ = EpilogueArgs(r_scale_, y_scale_);
        // A whole chunk's sums are one run of pixels x channels: the bias repeated over a run
        // of whole pixels that is also a whole number of vectors (and at least 256 values).
        if (!bias_.empty()) {
            int64_t run = std::lcm<int64_t>(y_[1], 16);
            while (run < 256) run *= 2;
            bias_run_.resize(static_cast<size_t>(run));
            for (size_t i = 0; i < bias_run_.size(); ++i) bias_run_[i] = bias_[i % bias_.size()];
        }
        scales_.resize(static_cast<size_t>(y_[1]));
        for (size_t m = 0; m < scales_.size(); ++m) scales_[m] = q.x_scale * q.w_scale[m];
        wei_dims_ = group_ == 1 ? memory::dims{wt[0], wt[1], wt[2], wt[3]}
                                : memory::dims{group_, wt[0] / group_, wt[1], wt[2], wt[3]};
        try {
            auto whole = make_pd(x_[2], h_.pad_begin, h_.pad_end, y_[2]);
            impl_ = whole.impl_info_str();
            if (is_dnnl_ref_impl(impl_)) {
                return fmt::format("oneDNN has only a reference int8 conv here ('{}')", impl_);
            }
            if (impl_.find("vnni") == std::string::npos && impl_.find("amx") == std::string::npos) {
                return fmt::format(
                    "CPU lacks VNNI/AMX: oneDNN's int8 conv '{}' sums in int16 with saturation",
                    impl_);
            }
            plan_chunks(whole);
            plan_direct(q);
            // The weights in oneDNN's format (the reorder adds the s8-source compensation): the
            // output channels [oc0, oc1) of each distinct slice (output channels are the
            // outermost axis of oihw; channel chunks exist only for group 1). Not needed when
            // the direct kernel sums.
            const int64_t per = wt[1] * wt[2] * wt[3];  // one byte per code (INT4 included)
            if (direct_on_ || dw_on_) wei_slices_.clear();
            for (const WeiSlice& w : wei_slices_) {
                memory::dims dims = wei_dims_;
                if (group_ == 1) dims[0] = w.oc1 - w.oc0;
                const memory::desc user_md(dims, DT::s8, group_ == 1 ? Tag::oihw : Tag::goihw);
                weights_.push_back(dnnl_.reorder_weights(
                    user_md, static_cast<const int8_t*>(q.w_codes->raw()) + w.oc0 * per,
                    {w.md})[0]);
            }
        } catch (const dnnl::error& e) {
            return fmt::format("oneDNN has no int8 conv for input {} weights {}: {}", shape_str(x_),
                               shape_str(wt), e.what());
        }
        what_ = fmt::format(
            "QConv {} {}x{} s{}{} [{}]{}{}{}", q.w_codes->dtype() == DType::Int4 ? "w4a8" : "int8",
            wt[2], wt[3], h_.stride, group_ == 1 ? "" : (group_ == x_[1] ? " dw" : " grouped"),
            direct_on_ ? kDirectImpl
            : dw_on_   ? kDirectDwImpl
                       : impl_,
            silu_ ? " +SiLU" : "", residual_ ? (residual_q_ ? " +Add(q)" : " +Add") : "",
            out_q_ ? " ->int8" : " ->f32");
        if (oc_chunks_) what_ += fmt::format(" x{} channel chunks", chunks_.size());
        if (!edge_impls_.empty() && !direct_on_ && !dw_on_) {
            what_ += fmt::format(" (some row chunks on {})", fmt::join(edge_impls_, ", "));
        }
        return {};
    }

    Status run(std::span<const Tensor> in, std::span<Tensor> out, const ThreadPool& pool) override {
        const auto* x = static_cast<const int8_t*>(in[0].raw());
        const void* res = residual_ ? in[3].raw() : nullptr;
        const int64_t c_out = y_[1];
        const int64_t x_image = x_[1] * x_[2] * x_[3];  // elements per NHWC image
        const int64_t y_image = c_out * y_[2] * y_[3];
        const int64_t x_row = x_[1] * x_[3];
        const int64_t y_row = c_out * y_[3];
        TaskFailure failure;
        pool.run(static_cast<int64_t>(chunks_.size()), [&](int64_t task, int thread) {
            Chunk& c = chunks_[static_cast<size_t>(task)];
            const Part& part = parts_[c.part];
            const auto t = static_cast<size_t>(thread);
            for (int64_t b = 0; b < x_[0]; ++b) {
                const int64_t y0 = b * y_image + c.oh0 * y_row;  // first output element
                // A chunk of output channels sums into a dense buffer of its own (oneDNN's
                // direct convs take only dense NHWC outputs).
                auto* acc = out_q_ || !routing_.dense() || oc_chunks_
                                ? static_cast<float*>(dnnl_.data(Workspace::ChunkOut, thread))
                                : static_cast<float*>(out[0].raw()) + y0;
                if (direct_on_) {
                    direct_.run(x + b * x_image, c.oh0, c.oh1, c.oc0, c.oc1, acc,
                                static_cast<uint8_t*>(dnnl_.data(Workspace::PaddedSrc, thread)));
                } else if (dw_on_) {
                    dw_.run(x + b * x_image, c.oh0, c.oh1, c.oc0, c.oc1, acc,
                            dnnl_.data(Workspace::PaddedSrc, thread));
                } else {
                    try {
                        c.src.set_data_handle(const_cast<int8_t*>(x + b * x_image + c.ih0 * x_row));
                        c.dst.set_data_handle(acc);
                        auto& stream = dnnl_.streams[t];
                        part.scratch[t].set_data_handle(dnnl_.data(Workspace::Scratchpad, thread));
                        execute_conv(part.prim, stream, c.src, weights_[part.wei], c.dst,
                                     part.scratch[t]);
                        stream.wait();
                    } catch (const dnnl::error& e) {
                        failure.record(e);
                        return;
                    }
                }
                const int64_t pixels = (c.oh1 - c.oh0) * y_[3];
                const auto [result, stride] = epilogue(acc, c, pixels, res, y0, out[0], thread);
                // Channel-range outputs (a folded Split) and in-place concat slices.
                const size_t elem = out_q_ ? 1 : 4;
                const int64_t p0 = (b * y_[2] + c.oh0) * y_[3];
                routing_.copy_channel_block(result, stride, c.oc0, c.oc1, out, p0, pixels, elem);
                quantize_slices(reinterpret_cast<const float*>(result), stride, c.oc0, c.oc1, out,
                                p0, pixels);
            }
        });
        if (failure) return failure.status(what_);
        return Status::ok();
    }

    std::string describe() const override {
        return what_ + routing_.suffix() + (qslices_.empty() ? "" : " >qconcat");
    }

    bool add_concat_slice(size_t out, size_t slot, int64_t offset, int64_t total,
                          bool keep_dense) override {
        if (!routing_.add_concat_slice(out, slot, offset, total)) return false;
        if (!keep_dense) drop_dense(out);
        return true;
    }

    bool add_channel_range_output(size_t out, size_t slot, int64_t c0, int64_t c1) override {
        if (!routing_.add_channel_range(out, slot, c0, c1)) return false;
        ranges_[slot] = {c0, c1};
        return true;
    }

    // The float32 result (or a channel range of it) quantized into an int8 Concat's output
    // (memory_plan.h plan_quantized_concat_slices).
    bool add_quantized_concat_slice(size_t out, size_t slot, int64_t offset, int64_t total,
                                    float scale, bool keep_dense) override {
        auto r = ranges_.find(out);
        if (out_q_ || !(scale > 0.0f) || !std::isfinite(scale) || r == ranges_.end()) return false;
        qslices_.push_back({slot, r->second.first, r->second.second, offset, total, scale});
        if (!keep_dense) drop_dense(out);
        return true;
    }

    void drop_dense(size_t out) override {
        // Output 0 then lives only in per-thread chunk buffers until the epilogue has copied it
        // to its other destinations.
        if (!routing_.drop_dense(out)) return;
        const size_t pixels = static_cast<size_t>(max_rows_ * y_[3] * y_[1]);
        dnnl_.reserve(Workspace::ChunkOut, pixels * 4);
        if (out_q_) dnnl_.reserve(Workspace::BlockedDst, pixels);
    }

private:
    struct Part {
        dnnl::convolution_forward::primitive_desc pd;
        dnnl::convolution_forward prim;
        size_t wei = 0;
        std::vector<memory> scratch;  // per pool thread
    };

    // acc: `pixels` NHWC pixels of the chunk's channels [c.oc0, c.oc1) (dense rows of that
    // width), float32 sums already scaled by s_x * s_w[m]. Writes the chunk's output elements
    // (output 0 from element `y0` on, or, when the output is not dense, a per-thread buffer).
    // Returns where the chunk's result is and how many elements apart its pixel rows are.
    std::pair<const char*, int64_t> epilogue(float* acc, const Chunk& c, int64_t pixels,
                                             const void* res, int64_t y0, Tensor& out,
                                             int thread) const {
        const int64_t c_out = y_[1];
        const int64_t width = c.oc1 - c.oc0;
        const bool whole = width == c_out;
        // Where the result goes: float32 in place, int8 codes into a per-thread buffer (when
        // output 0 is not kept dense) or into the output's channels of the chunk.
        char* y = reinterpret_cast<char*>(acc);
        int64_t y_stride = width;
        if (out_q_) {
            if (routing_.dense()) {
                y = static_cast<char*>(out.raw()) + y0 + c.oc0;
                y_stride = c_out;
            } else {
                y = static_cast<char*>(dnnl_.data(Workspace::BlockedDst, thread));
            }
        }
        const size_t y_elem = out_q_ ? 1 : 4;
        const size_t r_elem = residual_q_ ? 1 : 4;
        const char* r = res ? static_cast<const char*>(res) + (y0 + c.oc0) * r_elem : nullptr;
        if (whole) {
            // Sums, residual and result are each one dense run of the chunk's pixels.
            const int64_t len = pixels * width;
            const auto run = static_cast<int64_t>(bias_run_.size());
            const int64_t step = run > 0 ? run : len;
            for (int64_t i = 0; i < len; i += step) {
                epilogue_(epi_args_, acc + i, bias_run_.data(), r ? r + i * r_elem : nullptr,
                          y + i * y_elem, std::min(step, len - i));
            }
        } else {
            const float* bias = bias_.empty() ? nullptr : bias_.data() + c.oc0;
            for (int64_t p = 0; p < pixels; ++p) {
                epilogue_(epi_args_, acc + p * width, bias, r ? r + p * c_out * r_elem : nullptr,
                          y + p * y_stride * y_elem, width);
            }
        }
        if (!out_q_ && !whole && routing_.dense()) {
            copy_channel_rows(acc, width, static_cast<float*>(out.raw()) + y0 + c.oc0, c_out,
                              pixels, width, 4);
        }
        return {y, y_stride};
    }

    // Quantizes the result's channels (it holds [oc0, oc1) of `pixels` rows, float32, rows
    // `stride` elements apart, first pixel p0) into each quantized concat slice's share of
    // them, as the int8 Concat step would have (quantize_s8).
    void quantize_slices(const float* result, int64_t stride, int64_t oc0, int64_t oc1,
                         std::span<Tensor> out, int64_t p0, int64_t pixels) const {
        for (const QSlice& q : qslices_) {
            const int64_t lo = std::max(q.c0, oc0), hi = std::min(q.c1, oc1);
            if (lo >= hi) continue;
            int8_t* d =
                static_cast<int8_t*>(out[q.slot].raw()) + p0 * q.total + q.offset + (lo - q.c0);
            for (int64_t i = 0; i < pixels; ++i) {
                quantize_s8(result + i * stride + (lo - oc0), d + i * q.total, hi - lo, q.scale);
            }
        }
    }

    memory::desc nhwc(int64_t c, int64_t rows, int64_t w, DT dt) const {
        return memory::desc({1, c, rows, w}, dt, Tag::nhwc);
    }

    // The primitive for `in_rows` input rows (with the given vertical padding) producing
    // `out_rows` output rows of the output channels [oc0, oc1) (all: oc1 = -1), batch 1.
    dnnl::convolution_forward::primitive_desc make_pd(int64_t in_rows, int64_t pad_top,
                                                      int64_t pad_bottom, int64_t out_rows,
                                                      int64_t oc0 = 0, int64_t oc1 = -1) const {
        if (oc1 < 0) oc1 = y_[1];
        const memory::desc src_md = nhwc(x_[1], in_rows, x_[3], DT::s8);
        const memory::desc dst_md = nhwc(oc1 - oc0, out_rows, y_[3], DT::f32);
        memory::dims wei_dims = wei_dims_;
        if (group_ == 1) wei_dims[0] = oc1 - oc0;
        const memory::desc wei_md(wei_dims, DT::s8, Tag::any);
        dnnl::primitive_attr attr;
        attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
        // Per output channel (dim 1 of dst): the chunk's slice of the scales.
        attr.set_output_scales(2, std::vector<float>(scales_.begin() + oc0, scales_.begin() + oc1));
        const dnnl::convolution_forward::desc desc(
            dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src_md, wei_md,
            dst_md, {h_.stride, w_.stride}, {h_.dilation - 1, w_.dilation - 1},
            {pad_top, w_.pad_begin}, {pad_bottom, w_.pad_end});
        return dnnl::convolution_forward::primitive_desc(desc, attr, dnnl_.engine);
    }
    // Row chunks: enough for the pool threads and for each chunk's float32 sums to fit the
    // L2 budget, none below kMinChunkSeconds of work; a multiple of the thread count. A conv
    // that gets fewer row chunks than threads but at least one chunk's work is cut into one
    // range of output channels per thread instead (make_oc_chunks).
    void plan_chunks(const dnnl::convolution_forward::primitive_desc& whole) {
        const int64_t oh = y_[2];
        const double outputs = static_cast<double>(y_[1] * oh * y_[3]);
        const double acc_bytes = 4.0 * outputs;
        const int64_t t = n_threads_;
        // At one thread the chunks only keep the sums in L2 (fewer calls cost less), so the
        // epilogue counts only when the chunks are shared among threads.
        const double seconds =
            2.0 * outputs * static_cast<double>(x_[1] / group_ * h_.k * w_.k) / kOpsPerSecond +
            (t > 1 ? outputs * (kEpilogueSeconds + (silu_ ? kSiluSeconds : 0.0)) : 0.0);
        int64_t n =
            std::max<int64_t>(t, static_cast<int64_t>(std::ceil(acc_bytes / kChunkAccBytes)));
        n = std::min<int64_t>(
            n, std::max<int64_t>(1, static_cast<int64_t>(seconds / kMinChunkSeconds)));
        n = std::clamp<int64_t>(n, 1, oh);
        if (t > 1 && n > t) n = n / t * t;
        // Small layers (20-40 us modelled; the narrow YOLOs' 10x10 to 80x80 maps) got a single
        // row chunk at 2 threads, so one thread idled on them: they now get one chunk per thread.
        // Row chunks where the rows divide about evenly: measured by per-task CPU time (each
        // step's makespan over its tasks' thread CPU times), 2 threads, the bundled YOLOv10m's
        // ten such convs of 48-144 channels took 0.41 ms as one chunk, 0.28 ms as channel
        // chunks and 0.24 ms as row chunks (which write in place and read only their input
        // rows); its 24-channel 80x80 conv (too narrow for channel chunks) 0.20 -> 0.10 ms.
        // Where the rows do not divide evenly (maps of a few rows), ranges of output channels
        // over all rows (make_oc_chunks).
        if (t > 1 && n < t && seconds >= kMinChunkSeconds) {
            const int64_t rows = std::min(t, oh);
            const double share = static_cast<double>((oh + rows - 1) / rows) *
                                 static_cast<double>(t) / static_cast<double>(oh);
            if (group_ == 1 && share > kMaxRowImbalance && make_oc_chunks(t)) {
                n = static_cast<int64_t>(chunks_.size());
            } else {
                n = rows;
            }
        }
        std::vector<int64_t> bounds;
        for (int64_t i = 0; i <= n; ++i) bounds.push_back(oh * i / n);
        if (n > 1 && !oc_chunks_ && !make_chunks(bounds)) {
            edge_impls_.clear();
            parts_.clear();
            wei_slices_.clear();
            chunks_.clear();
            n = 1;
        }
        if (n == 1) {
            chunks_ = {Chunk{0, oh, 0, 0, 0, y_[1], {}, {}}};
            add_part(whole, 0, y_[1]);
        }
        int64_t max_rows = 0, widest = 0;
        for (Part& p : parts_) {
            dnnl_.reserve(Workspace::Scratchpad, p.pd.scratchpad_desc().get_size());
            for (int th = 0; th < t; ++th) {
                p.scratch.push_back(memory(p.pd.scratchpad_desc(), dnnl_.engine, DNNL_MEMORY_NONE));
            }
        }
        for (Chunk& c : chunks_) {
            c.src = memory(nhwc(x_[1], parts_[c.part].pd.src_desc().dims()[2], x_[3], DT::s8),
                           dnnl_.engine, DNNL_MEMORY_NONE);
            c.dst = memory(nhwc(c.oc1 - c.oc0, c.oh1 - c.oh0, y_[3], DT::f32), dnnl_.engine,
                           DNNL_MEMORY_NONE);
            max_rows = std::max(max_rows, c.oh1 - c.oh0);
            widest = std::max(widest, c.oc1 - c.oc0);
        }
        max_rows_ = max_rows;
        if (out_q_ || oc_chunks_) {
            dnnl_.reserve(Workspace::ChunkOut, static_cast<size_t>(max_rows * widest * y_[3]) * 4);
        }
        routing_.reset(y_[1]);
        ranges_ = {{0, {0, y_[1]}}};
    }

    // The direct VNNI kernel (qconv_direct.h) instead of oneDNN's where the conv fits it (its
    // limits are where it measured faster); the chunks stay as planned, since it takes any
    // rows and any range of output channels from a multiple of 16 on. ExecutorOptions::
    // int8_direct false keeps oneDNN's kernels (for comparisons).
    // Depthwise convs (one input channel a group, as many outputs as inputs) take the direct
    // depthwise kernel (qconv_dw.h) the same way.
    void plan_direct(const QuantConvSpec& q) {
        if (!dnnl_.int8_direct) return;
        const auto* codes = static_cast<const int8_t*>(q.w_codes->raw());
        int64_t max_rows = 0;
        for (const Chunk& c : chunks_) max_rows = std::max(max_rows, c.oh1 - c.oh0);
        const bool amx = impl_.find("amx") != std::string::npos;
        if (group_ == 1 && direct_.init(x_, y_[1], codes, h_, w_, scales_, amx)) {
            direct_on_ = true;
            dnnl_.reserve(Workspace::PaddedSrc, direct_.scratch_bytes(max_rows));
        } else if (group_ > 1 && group_ == x_[1] && y_[1] == x_[1] &&
                   dw_.init(x_, codes, h_, w_, scales_)) {
            dw_on_ = true;
            dnnl_.reserve(Workspace::PaddedSrc, dw_.scratch_bytes(max_rows));
        }
    }

    // `n` ranges of output channels over all rows, multiples of 16 channels (oneDNN's block)
    // but the last. False (nothing planned) when a chunk's primitive would use another
    // implementation than the whole conv's.
    bool make_oc_chunks(int64_t n) {
        const int64_t blocks = y_[1] / 16;
        if (n < 2 || blocks < n) return false;
        for (int64_t i = 0; i < n; ++i) {
            const int64_t oc0 = 16 * (blocks * i / n);
            const int64_t oc1 = i + 1 == n ? y_[1] : 16 * (blocks * (i + 1) / n);
            dnnl::convolution_forward::primitive_desc pd;
            try {
                pd = make_pd(x_[2], h_.pad_begin, h_.pad_end, y_[2], oc0, oc1);
            } catch (const dnnl::error&) {
                pd = {};
            }
            if (!pd || pd.impl_info_str() != impl_) {
                parts_.clear();
                wei_slices_.clear();
                chunks_.clear();
                return false;
            }
            // Each range has its own output scales, so its own primitive.
            add_part(pd, oc0, oc1);
            chunks_.push_back(Chunk{0, y_[2], 0, parts_.size() - 1, oc0, oc1, {}, {}});
        }
        oc_chunks_ = true;
        return true;
    }

    // A part computing the output channels [oc0, oc1).
    void add_part(const dnnl::convolution_forward::primitive_desc& pd, int64_t oc0, int64_t oc1) {
        Part p;
        p.pd = pd;
        p.prim = dnnl::convolution_forward(pd);
        const WeiSlice w{pd.weights_desc(), oc0, oc1};
        auto it = std::find_if(wei_slices_.begin(), wei_slices_.end(), [&](const WeiSlice& s) {
            return s.md == w.md && s.oc0 == oc0 && s.oc1 == oc1;
        });
        p.wei = static_cast<size_t>(it - wei_slices_.begin());
        if (it == wei_slices_.end()) wei_slices_.push_back(w);
        parts_.push_back(std::move(p));
    }

    bool make_chunks(const std::vector<int64_t>& bounds) {
        const int64_t extent = (h_.k - 1) * h_.dilation + 1;
        std::map<std::tuple<int64_t, int64_t, int64_t, int64_t>, size_t> part_of;
        for (size_t i = 0; i + 1 < bounds.size(); ++i) {
            const int64_t oh0 = bounds[i];
            const int64_t oh1 = bounds[i + 1];
            if (oh1 <= oh0) return false;
            const int64_t first = oh0 * h_.stride - h_.pad_begin;
            const int64_t last = (oh1 - 1) * h_.stride - h_.pad_begin + extent;
            const int64_t ih0 = std::max<int64_t>(0, first);
            const int64_t ih1 = std::min(x_[2], last);
            if (ih1 <= ih0) return false;
            const auto key = std::make_tuple(ih1 - ih0, ih0 - first, last - ih1, oh1 - oh0);
            auto it = part_of.find(key);
            if (it == part_of.end()) {
                auto pd = make_pd(ih1 - ih0, ih0 - first, last - ih1, oh1 - oh0);
                // Another implementation is fine when it is an exact int8 kernel too: the int32
                // sums are exact in any of them and the output scale is one float32 product per
                // sum, so the chunk's values are the same bits. On CPUs without AMX, oneDNN 2.6's
                // brgconv takes no unequal top/bottom padding, so the first chunk of a padded
                // 3x3 conv gets jit_int8 while the rest run on brgconv; refusing that left every
                // such conv as one chunk on one thread (full-width YOLOv10m, Zen 4, 2 threads).
                const std::string impl = pd.impl_info_str();
                if (impl != impl_) {
                    if (is_dnnl_ref_impl(impl) || (impl.find("vnni") == std::string::npos &&
                                                   impl.find("amx") == std::string::npos)) {
                        return false;
                    }
                    if (std::find(edge_impls_.begin(), edge_impls_.end(), impl) ==
                        edge_impls_.end()) {
                        edge_impls_.push_back(impl);
                    }
                }
                it = part_of.emplace(key, parts_.size()).first;
                add_part(pd, 0, y_[1]);
            }
            chunks_.push_back({oh0, oh1, ih0, it->second, 0, y_[1], {}, {}});
        }
        return true;
    }

    DnnlState& dnnl_;
    std::string what_, impl_;
    Shape x_, y_;
    int64_t group_ = 1;
    int n_threads_ = 1;
    Window h_, w_;
    bool silu_ = false, residual_ = false, residual_q_ = false, out_q_ = false;
    float r_scale_ = 1.0f, y_scale_ = 1.0f;
    std::vector<float> bias_, scales_;
    std::vector<float> bias_run_;  // bias_ repeated (epilogue's whole-chunk runs)
    EpilogueFn epilogue_ = nullptr;
    EpilogueArgs epi_args_{1.0f, 1.0f};
    memory::dims wei_dims_;
    // The weights the parts use: a format and a range of output channels.
    struct WeiSlice {
        memory::desc md;
        int64_t oc0 = 0, oc1 = 0;
    };
    std::vector<WeiSlice> wei_slices_;
    std::vector<std::string> edge_impls_;  // other exact int8 kernels some row chunks run on
    bool oc_chunks_ = false;               // chunks are ranges of output channels (make_oc_chunks)
    std::vector<memory> weights_;          // one per wei_slices_ entry
    std::vector<Part> parts_;
    std::vector<Chunk> chunks_;
    DirectInt8Conv direct_;
    bool direct_on_ = false;  // the sums come from direct_, not oneDNN (plan_direct)
    DirectInt8Dw dw_;
    bool dw_on_ = false;  // the sums come from dw_ (plan_direct)
    int64_t max_rows_ = 0;
    ConvRouting routing_;  // split ranges and concat slices of the result
    std::map<size_t, std::pair<int64_t, int64_t>> ranges_;  // output -> its channels [c0, c1)
    struct QSlice {
        size_t slot;
        int64_t c0, c1, offset, total;
        float scale;
    };
    std::vector<QSlice> qslices_;  // quantized concat slices
};

}  // namespace

std::unique_ptr<FastOp> make_qconv(DnnlState& dnnl, const Node& node, std::span<const Operand> ins,
                                   const Operand& conv_out, const ConvFusion& fusion,
                                   int n_threads) {
    const QuantConvSpec& q = *fusion.quant;
    auto refuse = [&](std::string why) -> std::unique_ptr<FastOp> {
        q.fallback = std::move(why);
        return nullptr;
    };
    if (ins.size() < 2 || ins[0].dtype != DType::Int8 || ins[0].shape.size() != 4 ||
        conv_out.shape.size() != 4 || !q.w_codes ||
        (q.w_codes->dtype() != DType::Int8 && q.w_codes->dtype() != DType::Int4) ||
        q.w_codes->rank() != 4 || q.w_codes->shape()[0] != conv_out.shape[1] ||
        q.w_scale.size() != static_cast<size_t>(conv_out.shape[1])) {
        return refuse("not a 2-D conv of int8 activations and int8 or int4 weights");
    }
    if (ins.size() > 2 && ins[2].present() &&
        (ins[2].dtype != DType::Float32 || ins[2].constant == nullptr)) {
        return refuse("bias is not a float32 constant");
    }
    if (fusion.residual && (ins.size() != 4 || ins[3].shape != conv_out.shape ||
                            ins[3].dtype != (q.residual_q ? DType::Int8 : DType::Float32))) {
        return refuse("residual operand");
    }
    const int64_t group = node.attr_int("group", 1);
    const Shape& wt = q.w_codes->shape();
    if (group < 1 || ins[0].shape[1] % group != 0 || wt[0] % group != 0 ||
        wt[1] * group != ins[0].shape[1] || shape_numel(conv_out.shape) == 0) {
        return refuse("group does not divide the channels");
    }
    auto op = std::make_unique<QConvOp>(dnnl);
    std::string why = op->init(node, ins, conv_out, fusion, n_threads);
    if (!why.empty()) return refuse(std::move(why));
    return op;
}

}  // namespace lowbit::cpu
