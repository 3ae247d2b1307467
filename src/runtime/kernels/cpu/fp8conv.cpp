// The FP8 (E4M3FN) Q/DQ conv step: the int8 pattern of qconv.cpp with FP8 codes,
//   DequantizeLinear(x_q, s_x) -> Conv(., DequantizeLinear(w_q, s_w[m]), b) [-> SiLU]
//   [-> Add(., R)] [-> QuantizeLinear(., s_y)]
// as one oneDNN bf16 convolution (AMX / AVX-512 BF16). Every E4M3 value is exact in bfloat16
// (at most 4 significant bits, exponents 2^-9 .. 2^8), and the product of two is exact in
// float32, so oneDNN's float32 sums of the code values differ from the simulation's float32
// conv of the dequantized values by summation order only. The epilogue (float32, one chunk
// of output rows while it is in L2) scales the sums by s_x * s_w[m], adds the bias, applies
// SiLU, adds the residual (float32, or E4M3 codes times their scale when R's DequantizeLinear
// is deferred) and either keeps float32 or quantizes as QuantizeLinear does:
// float_to_fp8_fast(v / s_y, saturate) (core/half.h, the reference kernel's own conversion).
// tests/py/test_fp8_kernels.py bounds the difference by one E4M3 step where a rounding ties.
//
// x_q, R and the output are stored NHWC, one byte per code. Each chunk converts the input rows
// it reads from E4M3 codes to bfloat16 into a per-thread buffer (a 128-entry table lookup,
// two AVX-512 word permutes per 32 codes), so activations stay one byte between quantized
// layers. The weights are converted and reordered into oneDNN's format once, at plan time.
// Without AVX-512 BF16 (or AMX) oneDNN would emulate bf16 on float32 units, slower than the
// float32 conv it replaces: the factory refuses then, and says why.
//
// The same op runs float16 convs (`quantize --high-precision fp16` models; make_fp16conv):
// oneDNN 2.6 has no float16 conv on CPUs (avx512_fp16 kernels came later), so the float16
// input rows and weights are rounded to bfloat16 (8 significant bits of float16's 11; ties to
// even) and the bf16 conv sums them in float32; bias and SiLU in float32 and one rounding to
// float16 at the output. Unlike the FP8 case this is not exact: each operand moves by up to
// 2^-9 of its value, so a result differs from the widening reference (fp16_via_fp32.cpp) by
// about 2^-9 of the largest |x*w| sum terms (tests/py/test_fp16_bf16_conv.py measures it);
// LOWBIT_LOWP_KERNELS=0 keeps the widening path.
#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <map>
#include <tuple>

#include "core/half.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#include "runtime/kernels/cpu/conv_routing.h"
#include "runtime/kernels/cpu/dnnl_state.h"
#include "runtime/kernels/cpu/fp8_math.h"
#include "runtime/kernels/cpu/ops.h"
#include "runtime/kernels/cpu/vmath.h"

namespace lowbit::cpu {
namespace {

using dnnl::memory;
using Tag = dnnl::memory::format_tag;
using DT = dnnl::memory::data_type;

constexpr DType kE4M3 = DType::Float8E4M3FN;

// float16 bits to bfloat16 bits, rounding to nearest even.
void f16_to_bf16(const uint16_t* x, uint16_t* y, int64_t n) {
    int64_t i = 0;
#if defined(__AVX512F__) && defined(__AVX512BF16__)
    for (; i + 32 <= n; i += 32) {
        const __m512 lo =
            _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i)));
        const __m512 hi =
            _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i + 16)));
        const __m512bh b = _mm512_cvtne2ps_pbh(hi, lo);
        _mm512_storeu_si512(y + i, reinterpret_cast<const __m512i&>(b));
    }
#endif
    for (; i < n; ++i) y[i] = float_to_bfloat16(half_to_float(x[i]));
}

// A chunk's float32 sums: at most a quarter of this CPU's 1 MiB L2.
constexpr double kChunkAccBytes = 256.0 * 1024;
// Below this much work per chunk the call overhead dominates. bf16 runs ~2x float32's rate
// (conv.cpp's kFlopsPerSecond, the rate measured on the bundled model's small layers; at
// 400e9 most of them ran as one chunk, on one thread).
constexpr double kMinChunkSeconds = 20e-6;
constexpr double kOpsPerSecond = 100e9;

struct Chunk {
    int64_t oh0 = 0, oh1 = 0;  // output rows
    int64_t ih0 = 0, ih1 = 0;  // input rows read
    size_t part = 0;
    memory src, dst;  // NHWC views, pointed at the per-thread buffers at run time
};

class Fp8ConvOp final : public FastOp {
public:
    // f16: a float16 conv (no scales, no quantization; fusion.quant unused), else FP8 codes.
    Fp8ConvOp(DnnlState& dnnl, bool f16) : dnnl_(dnnl), f16_(f16) {}

    // Returns a reason when the op cannot run the match (the step then falls back).
    std::string init(const Node& node, std::span<const Operand> ins, const Operand& conv_out,
                     const ConvFusion& fusion, int n_threads) {
        static const QuantConvSpec kNoQuant;
        const QuantConvSpec& q = f16_ ? kNoQuant : *fusion.quant;
        x_ = ins[0].shape;
        y_ = conv_out.shape;
        const Tensor& w_vals = f16_ ? *ins[1].constant : *q.w_codes;
        const Shape& wt = w_vals.shape();
        group_ = node.attr_int("group", 1);
        if (!window_2d(node, x_, y_, {wt[2], wt[3]}, h_, w_)) return "conv attributes";
        silu_ = fusion.silu;
        residual_ = fusion.residual;
        residual_q_ = q.residual_q;
        r_scale_ = q.r_scale;
        out_q_ = q.out_q;
        saturate_ = q.saturate;
        y_scale_ = q.y_scale;
        n_threads_ = std::max(1, n_threads);
        if (ins.size() > 2 && ins[2].present()) {
            const Tensor& b = *ins[2].constant;
            for (int64_t m = 0; m < b.numel(); ++m) {
                bias_.push_back(f16_ ? half_to_float(b.data<uint16_t>()[m]) : b.data<float>()[m]);
            }
        }
        if (!f16_) {
            scales_.resize(static_cast<size_t>(y_[1]));
            for (size_t m = 0; m < scales_.size(); ++m) scales_[m] = q.x_scale * q.w_scale[m];
        }
        wei_dims_ = group_ == 1 ? memory::dims{wt[0], wt[1], wt[2], wt[3]}
                                : memory::dims{group_, wt[0] / group_, wt[1], wt[2], wt[3]};
        const dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();
        if (isa != dnnl::cpu_isa::avx512_core_bf16 && isa != dnnl::cpu_isa::avx512_core_amx) {
            return "CPU lacks AVX512-BF16/AMX: bf16 convs would be emulated in float32";
        }
        try {
            auto whole = make_pd(x_[2], h_.pad_begin, h_.pad_end, y_[2]);
            impl_ = whole.impl_info_str();
            if (is_dnnl_ref_impl(impl_)) {
                return fmt::format("oneDNN has only a reference bf16 conv here ('{}')", impl_);
            }
            plan_chunks(whole);
            // The weights: E4M3 codes -> bfloat16 (exact) or float16 -> bfloat16 (rounded),
            // then oneDNN's format.
            std::vector<uint16_t> wb(static_cast<size_t>(w_vals.numel()));
            if (f16_) {
                f16_to_bf16(w_vals.data<uint16_t>(), wb.data(), w_vals.numel());
            } else {
                e4m3_to_bf16(static_cast<const uint8_t*>(w_vals.raw()), wb.data(), w_vals.numel());
            }
            const memory::desc user_md(wei_dims_, DT::bf16, group_ == 1 ? Tag::oihw : Tag::goihw);
            weights_ = dnnl_.reorder_weights(user_md, wb.data(), wei_mds_);
        } catch (const dnnl::error& e) {
            return fmt::format("oneDNN has no bf16 conv for input {} weights {}: {}", shape_str(x_),
                               shape_str(wt), e.what());
        }
        what_ = fmt::format(
            "{} {}x{} s{}{} [{}]{}{}{}", f16_ ? "Conv fp16 as bf16" : "QConv fp8", wt[2], wt[3],
            h_.stride, group_ == 1 ? "" : (group_ == x_[1] ? " dw" : " grouped"), impl_,
            silu_ ? " +SiLU" : "", residual_ ? (residual_q_ ? " +Add(q)" : " +Add") : "",
            out_q_ ? " ->fp8"
            : f16_ ? " ->f16"
                   : " ->f32");
        return {};
    }

    Status run(std::span<const Tensor> in, std::span<Tensor> out, const ThreadPool& pool) override {
        const auto* x = static_cast<const char*>(in[0].raw());
        const size_t x_elem = f16_ ? 2 : 1;
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
            auto* src = static_cast<uint16_t*>(dnnl_.data(Workspace::BlockedSrc, thread));
            for (int64_t b = 0; b < x_[0]; ++b) {
                const int64_t y0 = b * y_image + c.oh0 * y_row;  // first output element
                auto* acc = out_q_ || f16_ || !routing_.dense()
                                ? static_cast<float*>(dnnl_.data(Workspace::ChunkOut, thread))
                                : static_cast<float*>(out[0].raw()) + y0;
                const char* rows = x + (b * x_image + c.ih0 * x_row) * x_elem;
                if (f16_) {
                    f16_to_bf16(reinterpret_cast<const uint16_t*>(rows), src,
                                (c.ih1 - c.ih0) * x_row);
                } else {
                    e4m3_to_bf16(reinterpret_cast<const uint8_t*>(rows), src,
                                 (c.ih1 - c.ih0) * x_row);
                }
                try {
                    c.src.set_data_handle(src);
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
                const int64_t pixels = (c.oh1 - c.oh0) * y_[3];
                const char* result = epilogue(acc, pixels, res, y0, out[0], y0, thread);
                // Channel-range outputs (a folded Split) and in-place concat slices.
                const size_t elem = out_elem();
                const int64_t p0 = (b * y_[2] + c.oh0) * y_[3];
                routing_.copy_rows(result, out, p0, pixels, elem);
            }
        });
        if (failure) return failure.status(what_);
        return Status::ok();
    }

    std::string describe() const override { return what_ + routing_.suffix(); }

    bool add_concat_slice(size_t out, size_t slot, int64_t offset, int64_t total,
                          bool keep_dense) override {
        if (!routing_.add_concat_slice(out, slot, offset, total)) return false;
        if (!keep_dense) drop_dense(out);
        return true;
    }

    bool add_channel_range_output(size_t out, size_t slot, int64_t c0, int64_t c1) override {
        return routing_.add_channel_range(out, slot, c0, c1);
    }

    void drop_dense(size_t out) override {
        if (!routing_.drop_dense(out)) return;
        const size_t pixels = static_cast<size_t>(max_rows_ * y_[3] * y_[1]);
        dnnl_.reserve(Workspace::ChunkOut, pixels * 4);
        if (out_q_ || f16_) dnnl_.reserve(Workspace::BlockedDst, pixels * out_elem());
    }

private:
    struct Part {
        dnnl::convolution_forward::primitive_desc pd;
        dnnl::convolution_forward prim;
        size_t wei = 0;
        std::vector<memory> scratch;  // per pool thread
    };

    // acc: `pixels` NHWC pixels of float32 sums of code products; writes the output elements
    // from `y0` on (or, when the output is not dense, a per-thread buffer). Returns where the
    // chunk's result is.
    const char* epilogue(float* acc, int64_t pixels, const void* res, int64_t r0, Tensor& out,
                         int64_t y0, int thread) const {
        const int64_t c_out = y_[1];
        const int64_t len = pixels * c_out;
        const float* sc = scales_.data();
        const float* bi = bias_.data();
        for (int64_t p = 0; p < pixels && !f16_; ++p) {
            float* a = acc + p * c_out;
            if (bias_.empty()) {
                for (int64_t m = 0; m < c_out; ++m) a[m] *= sc[m];
            } else {
                for (int64_t m = 0; m < c_out; ++m) a[m] = a[m] * sc[m] + bi[m];
            }
        }
        for (int64_t p = 0; p < pixels && f16_ && !bias_.empty(); ++p) {
            float* a = acc + p * c_out;
            for (int64_t m = 0; m < c_out; ++m) a[m] += bi[m];
        }
        if (silu_) silu_f32(acc, acc, len);
        if (res) {
            if (residual_q_) {
                const uint8_t* r = static_cast<const uint8_t*>(res) + r0;
                const float* tab = fp8_table<kE4M3>.data();
                for (int64_t i = 0; i < len; ++i) acc[i] += tab[r[i]] * r_scale_;
            } else {
                const float* r = static_cast<const float*>(res) + r0;
                for (int64_t i = 0; i < len; ++i) acc[i] += r[i];
            }
        }
        if (f16_) {
            auto* y = routing_.dense() ? static_cast<uint16_t*>(out.raw()) + y0
                             : static_cast<uint16_t*>(dnnl_.data(Workspace::BlockedDst, thread));
            for (int64_t i = 0; i < len; ++i) y[i] = float_to_half(acc[i]);
            return reinterpret_cast<const char*>(y);
        }
        if (!out_q_) return reinterpret_cast<const char*>(acc);
        auto* y = routing_.dense() ? static_cast<uint8_t*>(out.raw()) + y0
                         : static_cast<uint8_t*>(dnnl_.data(Workspace::BlockedDst, thread));
        quantize_e4m3(acc, y, len, y_scale_, saturate_);
        return reinterpret_cast<const char*>(y);
    }

    memory::desc nhwc(int64_t c, int64_t rows, int64_t w, DT dt) const {
        return memory::desc({1, c, rows, w}, dt, Tag::nhwc);
    }

    dnnl::convolution_forward::primitive_desc make_pd(int64_t in_rows, int64_t pad_top,
                                                      int64_t pad_bottom, int64_t out_rows) const {
        const memory::desc src_md = nhwc(x_[1], in_rows, x_[3], DT::bf16);
        const memory::desc dst_md = nhwc(y_[1], out_rows, y_[3], DT::f32);
        const memory::desc wei_md(wei_dims_, DT::bf16, Tag::any);
        dnnl::primitive_attr attr;
        attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
        const dnnl::convolution_forward::desc desc(
            dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src_md, wei_md,
            dst_md, {h_.stride, w_.stride}, {h_.dilation - 1, w_.dilation - 1},
            {pad_top, w_.pad_begin}, {pad_bottom, w_.pad_end});
        return dnnl::convolution_forward::primitive_desc(desc, attr, dnnl_.engine);
    }

    // Row chunks: enough for the pool threads and for each chunk's float32 sums to fit the
    // L2 budget, none below kMinChunkSeconds of work; a multiple of the thread count.
    void plan_chunks(const dnnl::convolution_forward::primitive_desc& whole) {
        const int64_t oh = y_[2];
        const double acc_bytes = 4.0 * static_cast<double>(y_[1] * oh * y_[3]);
        const double ops = 2.0 * static_cast<double>(y_[1] * oh * y_[3]) *
                           static_cast<double>(x_[1] / group_ * h_.k * w_.k);
        const int64_t t = n_threads_;
        int64_t n =
            std::max<int64_t>(t, static_cast<int64_t>(std::ceil(acc_bytes / kChunkAccBytes)));
        n = std::min<int64_t>(
            n, std::max<int64_t>(1, static_cast<int64_t>(ops / kOpsPerSecond / kMinChunkSeconds)));
        n = std::clamp<int64_t>(n, 1, oh);
        if (t > 1 && n > t) n = n / t * t;
        std::vector<int64_t> bounds;
        for (int64_t i = 0; i <= n; ++i) bounds.push_back(oh * i / n);
        if (n > 1 && !make_chunks(bounds)) {
            parts_.clear();
            wei_mds_.clear();
            chunks_.clear();
            n = 1;
        }
        if (n == 1) {
            chunks_ = {Chunk{0, oh, 0, x_[2], 0, {}, {}}};
            add_part(whole);
        }
        int64_t max_rows = 0, max_in_rows = 0;
        for (Part& p : parts_) {
            dnnl_.reserve(Workspace::Scratchpad, p.pd.scratchpad_desc().get_size());
            for (int th = 0; th < t; ++th) {
                p.scratch.push_back(memory(p.pd.scratchpad_desc(), dnnl_.engine, DNNL_MEMORY_NONE));
            }
        }
        for (Chunk& c : chunks_) {
            c.src =
                memory(nhwc(x_[1], c.ih1 - c.ih0, x_[3], DT::bf16), dnnl_.engine, DNNL_MEMORY_NONE);
            c.dst =
                memory(nhwc(y_[1], c.oh1 - c.oh0, y_[3], DT::f32), dnnl_.engine, DNNL_MEMORY_NONE);
            max_rows = std::max(max_rows, c.oh1 - c.oh0);
            max_in_rows = std::max(max_in_rows, c.ih1 - c.ih0);
        }
        max_rows_ = max_rows;
        dnnl_.reserve(Workspace::BlockedSrc, static_cast<size_t>(max_in_rows * x_[1] * x_[3]) * 2);
        if (out_q_ || f16_) {
            dnnl_.reserve(Workspace::ChunkOut, static_cast<size_t>(max_rows * y_[1] * y_[3]) * 4);
        }
        routing_.reset(y_[1]);
    }

    void add_part(const dnnl::convolution_forward::primitive_desc& pd) {
        Part p;
        p.pd = pd;
        p.prim = dnnl::convolution_forward(pd);
        auto it = std::find(wei_mds_.begin(), wei_mds_.end(), pd.weights_desc());
        p.wei = static_cast<size_t>(it - wei_mds_.begin());
        if (it == wei_mds_.end()) wei_mds_.push_back(pd.weights_desc());
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
                if (pd.impl_info_str() != impl_) return false;
                it = part_of.emplace(key, parts_.size()).first;
                add_part(pd);
            }
            chunks_.push_back({oh0, oh1, ih0, ih1, it->second, {}, {}});
        }
        return true;
    }

    size_t out_elem() const { return out_q_ ? 1 : f16_ ? 2 : 4; }

    DnnlState& dnnl_;
    bool f16_ = false;
    std::string what_, impl_;
    Shape x_, y_;
    int64_t group_ = 1;
    int n_threads_ = 1;
    Window h_, w_;
    bool silu_ = false, residual_ = false, residual_q_ = false, out_q_ = false, saturate_ = true;
    float r_scale_ = 1.0f, y_scale_ = 1.0f;
    std::vector<float> bias_, scales_;
    memory::dims wei_dims_;
    std::vector<memory::desc> wei_mds_;
    std::vector<memory> weights_;
    std::vector<Part> parts_;
    std::vector<Chunk> chunks_;
    int64_t max_rows_ = 0;
    ConvRouting routing_;  // split ranges and concat slices of the result
};

}  // namespace

std::unique_ptr<FastOp> make_fp8conv(DnnlState& dnnl, const Node& node,
                                     std::span<const Operand> ins, const Operand& conv_out,
                                     const ConvFusion& fusion, int n_threads) {
    const QuantConvSpec& q = *fusion.quant;
    auto refuse = [&](std::string why) -> std::unique_ptr<FastOp> {
        q.fallback = std::move(why);
        return nullptr;
    };
    if (ins.size() < 2 || ins[0].dtype != kE4M3 || ins[0].shape.size() != 4 ||
        conv_out.shape.size() != 4 || !q.w_codes || q.w_codes->dtype() != kE4M3 ||
        q.w_codes->rank() != 4 || q.w_codes->shape()[0] != conv_out.shape[1] ||
        q.w_scale.size() != static_cast<size_t>(conv_out.shape[1])) {
        return refuse("not a 2-D conv of float8e4m3fn activations and weights");
    }
    if (ins.size() > 2 && ins[2].present() &&
        (ins[2].dtype != DType::Float32 || ins[2].constant == nullptr ||
         ins[2].constant->numel() != conv_out.shape[1])) {
        return refuse("bias is not a float32 constant");
    }
    if (fusion.residual && (ins.size() != 4 || ins[3].shape != conv_out.shape ||
                            ins[3].dtype != (q.residual_q ? kE4M3 : DType::Float32))) {
        return refuse("residual operand");
    }
    const int64_t group = node.attr_int("group", 1);
    const Shape& wt = q.w_codes->shape();
    if (group < 1 || ins[0].shape[1] % group != 0 || wt[0] % group != 0 ||
        wt[1] * group != ins[0].shape[1] || shape_numel(conv_out.shape) == 0) {
        return refuse("group does not divide the channels");
    }
    auto op = std::make_unique<Fp8ConvOp>(dnnl, false);
    std::string why = op->init(node, ins, conv_out, fusion, n_threads);
    if (!why.empty()) return refuse(std::move(why));
    return op;
}

std::unique_ptr<FastOp> make_fp16conv(DnnlState& dnnl, const Node& node,
                                      std::span<const Operand> ins, const Operand& out,
                                      const ConvFusion& fusion, int n_threads) {
    constexpr DType kF16 = DType::Float16;
    if (!dnnl.lowp || fusion.quant || fusion.residual || ins.size() < 2 || ins[0].dtype != kF16 ||
        ins[0].shape.size() != 4 || out.dtype != kF16 || out.shape.size() != 4 ||
        ins[1].dtype != kF16 || !ins[1].constant || ins[1].shape.size() != 4 ||
        ins[1].shape[0] != out.shape[1]) {
        return nullptr;
    }
    if (ins.size() > 2 && ins[2].present() &&
        (ins[2].dtype != kF16 || !ins[2].constant || ins[2].constant->numel() != out.shape[1])) {
        return nullptr;
    }
    const int64_t group = node.attr_int("group", 1);
    const Shape& wt = ins[1].shape;
    if (group < 1 || ins[0].shape[1] % group != 0 || wt[0] % group != 0 ||
        wt[1] * group != ins[0].shape[1] || shape_numel(out.shape) == 0) {
        return nullptr;
    }
    auto op = std::make_unique<Fp8ConvOp>(dnnl, true);
    if (!op->init(node, ins, out, fusion, n_threads).empty()) return nullptr;
    return op;
}

}  // namespace lowbit::cpu
