// LayerNorm over the last axis as one step (fusion.cpp matches PyTorch's opset < 17 export:
// ReduceMean -> Sub -> Pow 2 -> ReduceMean -> Add eps -> Sqrt -> Div [-> Mul gamma] [-> Add
// beta], ConvNeXt's LayerNorm and LayerNorm2d, and the LayerNormalization op over the last axis;
// issue 16). Every row of `len` contiguous floats
// is normalized on its own:
//   mean = sum(x) / len,  d = x - mean,  var = sum(d * d) / len,
//   y = d / sqrt(var + eps) * gamma + beta
// (ONNX LayerNormalization, axis -1). One read of the row for the mean, one for the variance
// and one to write y, all while the row is in L1, instead of nine passes over the tensor.
//
// Rows are contiguous whichever way the step's tensors are laid out: a plain [..., C] tensor,
// or a 4-D [N, C, H, W] stored NHWC, which is what a Transpose [0, 2, 3, 1] of it is as a plain
// tensor (the fused leading Transpose) and what a Transpose [0, 3, 1, 2] back writes (the
// fused trailing one). So the kernel only sees rows; the kernel table sets the layouts.
//
// The vectorized path sums in float32 (16 lanes) and multiplies by 1 / sqrt(var + eps) where
// the unfused ops sum in double and divide: within a few ulp of layer_norm_rows_ref, which
// follows the unfused reference kernels' arithmetic step by step.
#include <fmt/format.h>

#include <cmath>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "runtime/kernels/cpu/ops.h"

namespace lowbit::cpu {

void layer_norm_rows_ref(const float* x, float* y, int64_t rows, int64_t len, const float* gamma,
                         const float* beta, float eps) {
    for (int64_t r = 0; r < rows; ++r) {
        const float* p = x + r * len;
        float* q = y + r * len;
        double s = 0;
        for (int64_t j = 0; j < len; ++j) s += p[j];
        const auto mean = static_cast<float>(s / static_cast<double>(len));  // ReduceMean
        double s2 = 0;
        for (int64_t j = 0; j < len; ++j) {
            const float d = p[j] - mean;  // Sub
            s2 += d * d;                  // Pow 2, summed by the second ReduceMean
        }
        const auto var = static_cast<float>(s2 / static_cast<double>(len));
        const float den = std::sqrt(var + eps);  // Add eps, Sqrt
        for (int64_t j = 0; j < len; ++j) {
            float v = (p[j] - mean) / den;  // Div
            if (gamma) v = v * gamma[j];    // Mul
            if (beta) v = v + beta[j];      // Add
            q[j] = v;
        }
    }
}

namespace {

#if defined(__AVX512F__)
// GCC 12 reports its own _mm512_undefined_ps() inside the reductions as "maybe uninitialized"
// (GCC bug 105593; vmath.h); the code is fine.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

inline __mmask16 tail_mask(int64_t left) {
    return left >= 16 ? __mmask16(0xffff) : static_cast<__mmask16>((1u << left) - 1);
}

void layer_norm_row(const float* p, float* q, int64_t len, const float* gamma, const float* beta,
                    float eps) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int64_t j = 0;
    for (; j + 32 <= len; j += 32) {
        s0 = _mm512_add_ps(s0, _mm512_loadu_ps(p + j));
        s1 = _mm512_add_ps(s1, _mm512_loadu_ps(p + j + 16));
    }
    for (; j < len; j += 16) {
        s0 = _mm512_add_ps(s0, _mm512_maskz_loadu_ps(tail_mask(len - j), p + j));
    }
    const float mean = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1)) / static_cast<float>(len);
    const __m512 m = _mm512_set1_ps(mean);
    s0 = _mm512_setzero_ps();
    s1 = _mm512_setzero_ps();
    for (j = 0; j + 32 <= len; j += 32) {
        const __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(p + j), m);
        const __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(p + j + 16), m);
        s0 = _mm512_fmadd_ps(d0, d0, s0);
        s1 = _mm512_fmadd_ps(d1, d1, s1);
    }
    for (; j < len; j += 16) {
        const __mmask16 k = tail_mask(len - j);
        const __m512 d = _mm512_maskz_sub_ps(k, _mm512_maskz_loadu_ps(k, p + j), m);
        s0 = _mm512_fmadd_ps(d, d, s0);
    }
    const float var = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1)) / static_cast<float>(len);
    const __m512 inv = _mm512_set1_ps(1.0f / std::sqrt(var + eps));
    for (j = 0; j < len; j += 16) {
        const __mmask16 k = tail_mask(len - j);
        __m512 v = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, p + j), m), inv);
        if (gamma) v = _mm512_mul_ps(v, _mm512_maskz_loadu_ps(k, gamma + j));
        if (beta) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(k, beta + j));
        _mm512_mask_storeu_ps(q + j, k, v);
    }
}
#pragma GCC diagnostic pop
#endif

void layer_norm_rows(const float* x, float* y, int64_t r0, int64_t r1, int64_t len,
                     const float* gamma, const float* beta, float eps) {
#if defined(__AVX512F__)
    for (int64_t r = r0; r < r1; ++r) {
        layer_norm_row(x + r * len, y + r * len, len, gamma, beta, eps);
    }
#else
    layer_norm_rows_ref(x + r0 * len, y + r0 * len, r1 - r0, len, gamma, beta, eps);
#endif
}

class LayerNormOp final : public FastOp {
public:
    LayerNormOp(int64_t rows, int64_t len, const LayerNormSpec& spec, bool gamma, bool beta)
        : rows_(rows), len_(len), spec_(spec), gamma_(gamma), beta_(beta) {}

    Status run(std::span<const Tensor> in, std::span<Tensor> out, const ThreadPool& pool) override {
        const float* x = in[0].data<float>();
        const float* g = gamma_ ? in[1].data<float>() : nullptr;
        const float* b = beta_ ? in[2].data<float>() : nullptr;
        float* y = out[0].data<float>();
        // About 16k elements a task: a parallel region costs a few microseconds.
        pool.parallel_for(rows_, std::max<int64_t>(1, 16384 / len_), [&](int64_t r0, int64_t r1) {
            layer_norm_rows(x, y, r0, r1, len_, g, b, spec_.epsilon);
        });
        return Status::ok();
    }
    std::string describe() const override {
        return fmt::format("LayerNorm {} rows x {}{}{}{} (fused)", rows_, len_,
                           gamma_ || beta_ ? " +affine" : "", spec_.in_nhwc ? ", reads nhwc" : "",
                           spec_.out_nhwc ? ", writes nhwc" : "");
    }

private:
    int64_t rows_, len_;
    LayerNormSpec spec_;
    bool gamma_, beta_;
};

}  // namespace

std::unique_ptr<FastOp> make_layer_norm(std::span<const Operand> ins, const LayerNormSpec& spec) {
    if (ins.size() != 3 || ins[0].dtype != DType::Float32 || ins[0].shape.empty()) return nullptr;
    const Shape& x = ins[0].shape;
    if ((spec.in_nhwc || spec.out_nhwc) && x.size() != 4) return nullptr;
    // Rows along the last axis of the normalized tensor: C when x is the leading Transpose's
    // [N, C, H, W] input (read channels-last), else x's last axis.
    const int64_t len = spec.in_nhwc ? x[1] : x.back();
    if (len <= 0) return nullptr;
    for (size_t i = 1; i < 3; ++i) {
        if (ins[i].present() &&
            (ins[i].dtype != DType::Float32 || shape_numel(ins[i].shape) != len)) {
            return nullptr;
        }
    }
    return std::make_unique<LayerNormOp>(shape_numel(x) / len, len, spec, ins[1].present(),
                                         ins[2].present());
}

}  // namespace lowbit::cpu
