// Fast ops for the channels-last blocks of transformer-style CNNs (ConvNeXt's LayerNorm over
// channels, GELU as its Erf chain; issue 16):
//  - Transpose NCHW <-> NHWC that the storage layout already performs: perm [0, 2, 3, 1] of an
//    NHWC-stored tensor is, as a plain tensor, the same bytes; perm [0, 3, 1, 2] of a plain
//    tensor, stored NHWC, too. Both are one parallel copy (no reorder plus transpose);
//  - ReduceMean over the last axis (keepdims), summed per row in double, and ReduceSum over
//    the last axis (RT-DETR's deformable attention sums its 12 weighted samples per query);
//  - ReduceMax over the last axis (YOLOv10's end-to-end head: the best class score per anchor),
//    vectorized, equal to the reference bit for bit (rows holding a NaN or a zero maximum, where
//    the reference's first-wins order decides the result's payload or sign, go the scalar way);
//  - Pow with a constant scalar exponent 2: x * x, which is what the reference's double pow
//    rounds to (bit-exact);
//  - Erf, vectorized: Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7) with vmath.h's exp;
//  - GELU, the fused chain Div(x, c) -> Erf -> Add(., 1) -> Mul(x, .) -> Mul(., 0.5)
//    (fusion.cpp matches it): one pass over x instead of five, each step rounded as the
//    unfused fast ops round it (the same erf).
#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <limits>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "runtime/kernels/cpu/ops.h"
#include "runtime/kernels/cpu/vmath.h"

namespace lowbit::cpu {
namespace {

constexpr int64_t kGrain = 16384;

class CopyOp final : public FastOp {
public:
    CopyOp(int64_t bytes, std::string what) : bytes_(bytes), what_(std::move(what)) {}
    Status run(std::span<const Tensor> in, std::span<Tensor> out, const ThreadPool& pool) override {
        const auto* s = static_cast<const char*>(in[0].raw());
        auto* d = static_cast<char*>(out[0].raw());
        pool.parallel_for(bytes_, 1 << 18, [&](int64_t b, int64_t e) {
            std::memcpy(d + b, s + b, static_cast<size_t>(e - b));
        });
        return Status::ok();
    }
    std::string describe() const override { return what_; }

private:
    int64_t bytes_;
    std::string what_;
};

// ReduceMean (mean) or ReduceSum (!mean) of each row, summed in double as the reference does.
class ReduceSumLastOp final : public FastOp {
public:
    ReduceSumLastOp(int64_t rows, int64_t len, bool mean) : rows_(rows), len_(len), mean_(mean) {}
    Status run(std::span<const Tensor> in, std::span<Tensor> out, const ThreadPool& pool) override {
        const float* x = in[0].data<float>();
        float* y = out[0].data<float>();
        pool.parallel_for(rows_, std::max<int64_t>(1, kGrain / len_), [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; ++r) {
                const float* p = x + r * len_;
                double s = 0;
                for (int64_t j = 0; j < len_; ++j) s += p[j];
                y[r] = static_cast<float>(mean_ ? s / static_cast<double>(len_) : s);
            }
        });
        return Status::ok();
    }
    std::string describe() const override {
        return mean_ ? "ReduceMean last axis" : "ReduceSum last axis";
    }

private:
    int64_t rows_, len_;
    bool mean_;
};

class SquareOp final : public FastOp {
public:
    Status run(std::span<const Tensor> in, std::span<Tensor> out, const ThreadPool& pool) override {
        const float* x = in[0].data<float>();
        float* y = out[0].data<float>();
        pool.parallel_for(out[0].numel(), kGrain, [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) y[i] = x[i] * x[i];
        });
        return Status::ok();
    }
    std::string describe() const override { return "Pow x^2"; }
};

#if defined(__AVX512F__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
inline __m512 erf512(__m512 x) {
    const __m512 ax = _mm512_abs_ps(x);
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512 t = _mm512_div_ps(one, _mm512_fmadd_ps(_mm512_set1_ps(0.3275911f), ax, one));
    __m512 p = _mm512_set1_ps(1.061405429f);
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.453152027f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.421413741f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.284496736f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.254829592f));
    p = _mm512_mul_ps(p, t);
    const __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(ax, ax)));
    const __m512 r = _mm512_fnmadd_ps(p, e, one);  // erf(|x|)
    // The sign of x back on (erf is odd); NaN propagates through the arithmetic.
    const __m512i sign = _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(INT32_MIN));
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(r), sign));
}
#pragma GCC diagnostic pop

void erf_f32(const float* in, float* out, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, erf512(_mm512_loadu_ps(in + i)));
    if (i < n) {
        const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(out + i, m, erf512(_mm512_maskz_loadu_ps(m, in + i)));
    }
}

inline __m512 gelu512(__m512 x, __m512 c) {
    const __m512 e = erf512(_mm512_div_ps(x, c));
    const __m512 m = _mm512_mul_ps(x, _mm512_add_ps(e, _mm512_set1_ps(1.0f)));
    return _mm512_mul_ps(m, _mm512_set1_ps(0.5f));
}

void gelu_f32(const float* in, float* out, int64_t n, float div) {
    const __m512 c = _mm512_set1_ps(div);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, gelu512(_mm512_loadu_ps(in + i), c));
    if (i < n) {
        const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(out + i, m, gelu512(_mm512_maskz_loadu_ps(m, in + i), c));
    }
}
#else
void erf_f32(const float* in, float* out, int64_t n) {
    for (int64_t i = 0; i < n; ++i) out[i] = std::erf(in[i]);
}

void gelu_f32(const float* in, float* out, int64_t n, float div) {
    for (int64_t i = 0; i < n; ++i) out[i] = in[i] * (std::erf(in[i] / div) + 1.0f) * 0.5f;
}
#endif

class ErfOp final : public FastOp {
public:
    Status run(std::span<const Tensor> in, std::span<Tensor> out, const ThreadPool& pool) override {
        const float* x = in[0].data<float>();
        float* y = out[0].data<float>();
        pool.parallel_for(out[0].numel(), kGrain,
                          [&](int64_t b, int64_t e) { erf_f32(x + b, y + b, e - b); });
        return Status::ok();
    }
    std::string describe() const override { return "Erf (vectorized)"; }
};

class GeluOp final : public FastOp {
public:
    explicit GeluOp(float div) : div_(div) {}
    Status run(std::span<const Tensor> in, std::span<Tensor> out, const ThreadPool& pool) override {
        const float* x = in[0].data<float>();
        float* y = out[0].data<float>();
        pool.parallel_for(out[0].numel(), kGrain,
                          [&](int64_t b, int64_t e) { gelu_f32(x + b, y + b, e - b, div_); });
        return Status::ok();
    }
    std::string describe() const override { return "GELU Div->Erf->Add->Mul->Mul (fused)"; }

private:
    float div_;
};

}  // namespace

bool is_layout_transpose(const Node& node, std::span<const Operand> ins, bool to_plain) {
    if (node.op_type != "Transpose" || ins.size() != 1 || ins[0].shape.size() != 4) return false;
    const std::vector<int64_t> perm = node.attr_ints("perm");
    const std::vector<int64_t> want =
        to_plain ? std::vector<int64_t>{0, 2, 3, 1} : std::vector<int64_t>{0, 3, 1, 2};
    return perm == want && (ins[0].layout == Layout::Nhwc) == to_plain;
}

std::unique_ptr<FastOp> make_layout_transpose(const Node& node, std::span<const Operand> ins) {
    const bool to_plain = is_layout_transpose(node, ins, true);
    if (!to_plain && !is_layout_transpose(node, ins, false)) return nullptr;
    const int64_t bytes =
        shape_numel(ins[0].shape) * static_cast<int64_t>(dtype_size(ins[0].dtype));
    return std::make_unique<CopyOp>(bytes, to_plain ? "Transpose nhwc->plain NHWC (copy)"
                                                    : "Transpose plain NHWC->nhwc (copy)");
}

// The reference's row maximum (kernels/ref/reduce.cpp ReduceMaxOp): a value replaces the
// running maximum when it is NaN or larger, and once NaN the maximum stays NaN.
float row_max_scalar(const float* p, int64_t n) {
    float acc = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < n; ++j) {
        if (std::isnan(acc)) break;
        if (std::isnan(p[j]) || p[j] > acc) acc = p[j];
    }
    return acc;
}

float row_max(const float* p, int64_t n) {
#if defined(__AVX512F__)
    __m512 m = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
    __mmask16 nan = 0;
    for (int64_t j = 0; j < n; j += 16) {
        const __mmask16 k = n - j >= 16 ? __mmask16(0xffff) : __mmask16((1u << (n - j)) - 1);
        const __m512 v = _mm512_mask_loadu_ps(m, k, p + j);  // masked-off lanes keep m
        nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        m = _mm512_max_ps(m, v);
    }
    const float r = _mm512_reduce_max_ps(m);
    // Without NaN a non-zero maximum is one bit pattern whichever element gave it.
    if (nan == 0 && r != 0.0f) return r;
#endif
    return row_max_scalar(p, n);
}

class ReduceMaxLastOp final : public FastOp {
public:
    ReduceMaxLastOp(int64_t rows, int64_t len) : rows_(rows), len_(len) {}
    Status run(std::span<const Tensor> in, std::span<Tensor> out, const ThreadPool& pool) override {
        const float* x = in[0].data<float>();
        float* y = out[0].data<float>();
        pool.parallel_for(rows_, std::max<int64_t>(1, kGrain / len_), [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; ++r) y[r] = row_max(x + r * len_, len_);
        });
        return Status::ok();
    }
    std::string describe() const override { return "ReduceMax last axis (vectorized)"; }

private:
    int64_t rows_, len_;
};

std::unique_ptr<FastOp> make_reduce_last(const Node& node, int64_t opset,
                                         std::span<const Operand> ins, const Operand& out) {
    const bool max = node.op_type == "ReduceMax", sum = node.op_type == "ReduceSum";
    if ((node.op_type != "ReduceMean" && !max && !sum) || ins.empty() ||
        ins[0].dtype != DType::Float32 ||
        ins[0].shape.empty() || out.dtype != DType::Float32) {
        return nullptr;
    }
    const Shape& x = ins[0].shape;
    const auto rank = static_cast<int64_t>(x.size());
    std::vector<int64_t> axes;
    if (opset >= 18 || (sum && opset >= 13)) {  // ReduceSum took its axes as an input at 13
        if (ins.size() < 2 || !ins[1].present() || ins[1].constant == nullptr ||
            ins[1].dtype != DType::Int64) {
            return nullptr;
        }
        const Tensor& a = *ins[1].constant;
        axes.assign(a.data<int64_t>(), a.data<int64_t>() + a.numel());
    } else {
        if (ins.size() > 1) return nullptr;
        axes = node.attr_ints("axes");
    }
    if (axes.size() != 1 || (axes[0] != -1 && axes[0] != rank - 1)) return nullptr;
    const bool keepdims = node.attr_int("keepdims", 1) != 0;
    if (!keepdims && !max && !sum) return nullptr;
    Shape want = x;
    if (keepdims) {
        want.back() = 1;
    } else {
        want.pop_back();
    }
    if (out.shape != want || x.back() == 0) return nullptr;
    if (max) return std::make_unique<ReduceMaxLastOp>(shape_numel(want), x.back());
    return std::make_unique<ReduceSumLastOp>(shape_numel(want), x.back(), !sum);
}

std::unique_ptr<FastOp> make_pow_square(const Node& node, std::span<const Operand> ins,
                                        const Operand& out) {
    if (node.op_type != "Pow" || ins.size() != 2 || ins[0].dtype != DType::Float32 ||
        ins[0].shape != out.shape || ins[1].constant == nullptr ||
        ins[1].dtype != DType::Float32 || ins[1].constant->numel() != 1 ||
        ins[1].constant->data<float>()[0] != 2.0f) {
        return nullptr;
    }
    return std::make_unique<SquareOp>();
}

std::unique_ptr<FastOp> make_erf(const Node& node, std::span<const Operand> ins) {
    if (node.op_type != "Erf" || ins.size() != 1 || ins[0].dtype != DType::Float32) return nullptr;
    return std::make_unique<ErfOp>();
}

std::unique_ptr<FastOp> make_gelu(const Node& node, std::span<const Operand> ins,
                                  const Operand& out, float div) {
    if (node.op_type != "Div" || ins.size() != 1 || ins[0].dtype != DType::Float32 ||
        out.dtype != DType::Float32 || ins[0].shape != out.shape) {
        return nullptr;
    }
    return std::make_unique<GeluOp>(div);
}

}  // namespace lowbit::cpu
