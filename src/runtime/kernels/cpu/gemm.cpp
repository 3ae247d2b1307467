// Gemm through oneDNN's matmul primitive (issue 16: the classifier heads of MobileNet, ResNet,
// ConvNeXt): Y = A' * B' + C with A' = A or A^T (transA), B' = B or B^T (transB), float32, plain
// row-major tensors, alpha = 1 and (with C) beta = 1; C absent or a constant [N] or [1, N]
// (the primitive's bias, broadcast over rows). Transposes are strides of the memory
// descriptors, so nothing is copied. Other attribute values: the reference Gemm.
//
// Threads: a head is a few rows times a large B (ResNet-50's is 2048 x 1000, 8 MB), so the
// product is cut into column chunks of B', Y and C (multiples of 16 columns), one
// single-thread primitive each, run as pool tasks: each thread streams its own part of B.
// Only with fewer than 64 rows (for a column slice of B oneDNN picks gemm:jit, slower on
// more rows; matmul.cpp) and B at least 256 KiB or ~20 us of work per chunk; else one call.
//
// One row (batch 1, the common case of a classifier head) is a matrix-vector product that
// reads all of B once: with AVX-512 it runs on lowbit's own loops (gemv_*, below). On Zen 4,
// one thread, MobileNetV3-Large's two heads (960 x 1280 and 1280 x 1000, 4.9 and 5.1 MB) took
// 0.40-0.48 ms each on oneDNN's matmul (11-13 GB/s; a plain read loop streams 22 GB/s from
// DRAM there) and 0.21-0.31 ms on these loops, alternating calls (README, Model zoo).
#include <fmt/format.h>

#include <algorithm>
#include <tuple>
#include <utility>

#if defined(__AVX512F__)
#include <immintrin.h>
#define LOWBIT_GEMV 1
#endif

#include "runtime/kernels/cpu/dnnl_state.h"
#include "runtime/kernels/cpu/ops.h"

namespace lowbit::cpu {
namespace {

using dnnl::memory;
using DT = dnnl::memory::data_type;
using Tag = dnnl::memory::format_tag;

#if LOWBIT_GEMV
// GCC 12 reports its own _mm512_undefined_* inside _mm512_reduce_add_ps as "(maybe)
// uninitialized" (GCC bug 105593), as in vmath.h.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

// The first `n` lanes of a 16-float vector.
__mmask16 lanes(int64_t n) {
    return static_cast<__mmask16>((1u << n) - 1);
}

// y[j] = a . bt[j, :] (+ bias[j]) for j in [j0, j1): B stored transposed, [N, K], so each
// output is the dot product of a with one contiguous row, and the rows are read in order, one
// sequential stream (four rows side by side, four streams, ran at half the speed). Each row's
// sum is four accumulators of 16 partial sums (k, k + 16, ...) added up at the end.
void gemv_rows(const float* a, const float* bt, int64_t k, const float* bias, float* y, int64_t j0,
               int64_t j1) {
    const int64_t body = k / 64 * 64, body16 = k / 16 * 16;
    const __mmask16 tail = lanes(k - body16);
    for (int64_t j = j0; j < j1; ++j) {
        const float* r = bt + j * k;
        __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        for (int64_t i = 0; i < body; i += 64) {
            s0 = _mm512_fmadd_ps(_mm512_loadu_ps(r + i), _mm512_loadu_ps(a + i), s0);
            s1 = _mm512_fmadd_ps(_mm512_loadu_ps(r + i + 16), _mm512_loadu_ps(a + i + 16), s1);
            s2 = _mm512_fmadd_ps(_mm512_loadu_ps(r + i + 32), _mm512_loadu_ps(a + i + 32), s2);
            s3 = _mm512_fmadd_ps(_mm512_loadu_ps(r + i + 48), _mm512_loadu_ps(a + i + 48), s3);
        }
        for (int64_t i = body; i < body16; i += 16) {
            s0 = _mm512_fmadd_ps(_mm512_loadu_ps(r + i), _mm512_loadu_ps(a + i), s0);
        }
        if (tail) {
            s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, r + body16),
                                 _mm512_maskz_loadu_ps(tail, a + body16), s1);
        }
        const __m512 s = _mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3));
        y[j] = _mm512_reduce_add_ps(s) + (bias ? bias[j] : 0.0f);
    }
}

// y[j0, j1) = a . b[:, j0:j1] (+ bias): B stored [K, N] (row stride n), so each a[i] scales
// one row piece; 128 columns (8 accumulators) at a time, the last block masked. (No zoo model
// has such a head, PyTorch exports Linear as B^T, so this one was not timed.)
void gemv_cols(const float* a, const float* b, int64_t k, int64_t n, const float* bias, float* y,
               int64_t j0, int64_t j1) {
    for (int64_t c = j0; c < j1; c += 128) {
        const int64_t width = std::min<int64_t>(128, j1 - c);
        const int64_t vecs = (width + 15) / 16;
        __mmask16 m[8];
        __m512 s[8];
        for (int64_t v = 0; v < 8; ++v) {
            const int64_t left = width - 16 * v;
            m[v] = left >= 16 ? __mmask16(0xffff) : left > 0 ? lanes(left) : __mmask16(0);
            s[v] = bias ? _mm512_maskz_loadu_ps(m[v], bias + c + 16 * v) : _mm512_setzero_ps();
        }
        for (int64_t i = 0; i < k; ++i) {
            const __m512 x = _mm512_set1_ps(a[i]);
            const float* r = b + i * n + c;
            for (int64_t v = 0; v < vecs; ++v) {
                s[v] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m[v], r + 16 * v), x, s[v]);
            }
        }
        for (int64_t v = 0; v < vecs; ++v) _mm512_mask_storeu_ps(y + c + 16 * v, m[v], s[v]);
    }
}
#pragma GCC diagnostic pop
#endif

class GemmOp final : public FastOp {
public:
    explicit GemmOp(DnnlState& dnnl) : dnnl_(dnnl) {}

    bool init(const Node& node, std::span<const Operand> ins, const Operand& out, int n_threads,
              std::vector<std::string>& warnings) {
        const bool ta = node.attr_int("transA", 0) != 0;
        tb_ = node.attr_int("transB", 0) != 0;
        const int64_t m = out.shape[0], n = out.shape[1];
        const int64_t k = ta ? ins[0].shape[0] : ins[0].shape[1];
        k_ = k;
        n_ = n;
        has_bias_ = ins.size() > 2 && ins[2].present();
        const double flops = 2.0 * static_cast<double>(m) * static_cast<double>(k * n);
        int64_t pieces = 1;
        if (n_threads > 1 && m < 64 &&
            (k * n * 4 >= 256 * 1024 || flops / 100e9 >= 20e-6 * n_threads)) {
            pieces = std::min<int64_t>(n_threads, n / 16);
        }
        pieces = std::max<int64_t>(pieces, 1);
        // Column chunk i of `pieces`: [c0, c1), multiples of 16 but the last end.
        const auto chunk = [&](int64_t i) {
            return std::pair<int64_t, int64_t>{
                pieces == 1 ? 0 : n / 16 * i / pieces * 16,
                i + 1 == pieces ? n : n / 16 * (i + 1) / pieces * 16};
        };
#if LOWBIT_GEMV
        if (m == 1) {
            for (int64_t i = 0; i < pieces; ++i) gemv_chunks_.push_back(chunk(i));
            what_ = fmt::format("Gemm 1x{}x{}{} [gemv:avx512]{}", k, n, tb_ ? " B^T" : "",
                                pieces > 1 ? fmt::format(" x{} column chunks", pieces) : "");
            return true;
        }
#endif
        // Logical [M, K] and [K, N]; a transposed operand is the stored array read column-wise.
        // A column chunk of B' is a column slice of B (row stride N) or a row slice of the
        // stored B^T (column stride K).
        const memory::desc a_md({m, k}, DT::f32, ta ? memory::dims{1, m} : memory::dims{k, 1});
        dnnl::primitive_attr attr;
        attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
        std::string impl;
        for (int64_t i = 0; i < pieces; ++i) {
            Part p;
            std::tie(p.c0, p.c1) = chunk(i);
            const int64_t w = p.c1 - p.c0;
            const memory::desc b_md({k, w}, DT::f32, tb_ ? memory::dims{1, k} : memory::dims{n, 1});
            const memory::desc y_md({m, w}, DT::f32, memory::dims{n, 1});
            if (has_bias_) {
                const memory::desc bias_md({1, w}, DT::f32, memory::dims{n, 1});
                p.pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(a_md, b_md, bias_md, y_md),
                                                    attr, dnnl_.engine);
                p.bias = memory(bias_md, dnnl_.engine, DNNL_MEMORY_NONE);
            } else {
                p.pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(a_md, b_md, y_md), attr,
                                                    dnnl_.engine);
            }
            if (i == 0) impl = p.pd.impl_info_str();
            if (is_dnnl_ref_impl(p.pd.impl_info_str())) {
                warnings.push_back(
                    fmt::format("{}: oneDNN has only '{}'; using lowbit's "
                                "reference Gemm",
                                node.describe(), p.pd.impl_info_str()));
                return false;
            }
            p.prim = dnnl::matmul(p.pd);
            dnnl_.reserve(Workspace::Scratchpad, p.pd.scratchpad_desc().get_size());
            p.a = memory(a_md, dnnl_.engine, DNNL_MEMORY_NONE);
            p.b = memory(b_md, dnnl_.engine, DNNL_MEMORY_NONE);
            p.y = memory(y_md, dnnl_.engine, DNNL_MEMORY_NONE);
            p.scratch = memory(p.pd.scratchpad_desc(), dnnl_.engine, DNNL_MEMORY_NONE);
            parts_.push_back(std::move(p));
        }
        what_ =
            fmt::format("Gemm {}x{}x{}{}{} [{}]{}", m, k, n, ta ? " A^T" : "", tb_ ? " B^T" : "",
                        impl, pieces > 1 ? fmt::format(" x{} column chunks", pieces) : "");
        return true;
    }

    Status run(std::span<const Tensor> in, std::span<Tensor> out, const ThreadPool& pool) override {
        const auto* a = static_cast<const float*>(in[0].raw());
        const auto* b = static_cast<const float*>(in[1].raw());
        const auto* bias = has_bias_ ? static_cast<const float*>(in[2].raw()) : nullptr;
        auto* y = static_cast<float*>(out[0].raw());
#if LOWBIT_GEMV
        if (!gemv_chunks_.empty()) {
            auto part = [&](int64_t i, int) {
                const auto [c0, c1] = gemv_chunks_[static_cast<size_t>(i)];
                if (tb_) {
                    gemv_rows(a, b, k_, bias, y, c0, c1);
                } else {
                    gemv_cols(a, b, k_, n_, bias, y, c0, c1);
                }
            };
            if (gemv_chunks_.size() == 1) {
                part(0, 0);
            } else {
                pool.run(static_cast<int64_t>(gemv_chunks_.size()), part);
            }
            return Status::ok();
        }
#endif
        TaskFailure failure;
        auto one = [&](int64_t i, int thread) {
            Part& p = parts_[static_cast<size_t>(i)];
            try {
                p.a.set_data_handle(const_cast<float*>(a));
                p.b.set_data_handle(const_cast<float*>(b + (tb_ ? p.c0 * k_ : p.c0)));
                p.y.set_data_handle(y + p.c0);
                auto& stream = dnnl_.streams[static_cast<size_t>(thread)];
                // A part is one task: its memory objects are touched by one thread at a time.
                p.scratch.set_data_handle(dnnl_.data(Workspace::Scratchpad, thread));
                ExecArgs args;
                args.add(DNNL_ARG_SRC, p.a)
                    .add(DNNL_ARG_WEIGHTS, p.b)
                    .add(DNNL_ARG_DST, p.y)
                    .add(DNNL_ARG_SCRATCHPAD, p.scratch);
                if (bias) {
                    p.bias.set_data_handle(const_cast<float*>(bias + p.c0));
                    args.add(DNNL_ARG_BIAS, p.bias);
                }
                args.execute(p.prim, stream);
                stream.wait();
            } catch (const dnnl::error& e) {
                failure.record(e);
            }
        };
        if (parts_.size() == 1) {
            one(0, 0);  // one call on the calling thread (pool thread 0)
        } else {
            pool.run(static_cast<int64_t>(parts_.size()), one);
        }
        if (failure) return failure.status(what_);
        return Status::ok();
    }

    std::string describe() const override { return what_; }

private:
    // One column chunk [c0, c1) of B', Y and C; each part runs on one thread at a time.
    struct Part {
        int64_t c0 = 0, c1 = 0;
        dnnl::matmul::primitive_desc pd;
        dnnl::matmul prim;
        memory a, b, y, bias, scratch;
    };
    DnnlState& dnnl_;
    std::string what_;
    bool has_bias_ = false, tb_ = false;
    // One row: the column chunks gemv_rows / gemv_cols compute instead of oneDNN (no parts_).
    std::vector<std::pair<int64_t, int64_t>> gemv_chunks_;
    int64_t k_ = 0, n_ = 0;
    std::vector<Part> parts_;
};

}  // namespace

std::unique_ptr<FastOp> make_gemm(DnnlState& dnnl, const Node& node, std::span<const Operand> ins,
                                  const Operand& out, int n_threads,
                                  std::vector<std::string>& warnings) {
    if (ins.size() < 2 || ins.size() > 3 || out.dtype != DType::Float32 || out.shape.size() != 2 ||
        shape_numel(out.shape) == 0) {
        return nullptr;
    }
    for (size_t i = 0; i < 2; ++i) {
        if (ins[i].dtype != DType::Float32 || ins[i].shape.size() != 2) return nullptr;
    }
    if (node.attr_float("alpha", 1.0f) != 1.0f) return nullptr;
    if (ins.size() == 3 && ins[2].present()) {
        const Shape& c = ins[2].shape;
        const int64_t n = out.shape[1];
        const bool row = (c.size() == 1 && c[0] == n) || (c.size() == 2 && c[0] == 1 && c[1] == n);
        if (ins[2].dtype != DType::Float32 || ins[2].constant == nullptr ||
            node.attr_float("beta", 1.0f) != 1.0f || !row) {
            return nullptr;
        }
    }
    auto op = std::make_unique<GemmOp>(dnnl);
    try {
        if (!op->init(node, ins, out, n_threads, warnings)) return nullptr;
    } catch (const dnnl::error&) {
        return nullptr;
    }
    return op;
}

}  // namespace lowbit::cpu
