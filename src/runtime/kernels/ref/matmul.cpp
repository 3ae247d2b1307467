// Reference matrix products: MatMul (NumPy matmul semantics, batched with broadcasting) and Gemm.
// float32 and float64; accumulation in the element type, as ONNX Runtime does.
#include <algorithm>
#include <vector>

#include "core/thread_pool.h"
#include "runtime/kernels/ref/op_util.h"
#include "runtime/registry.h"

namespace lowbit::ref {
namespace {

// C[i, :] (row i of an [m, n] row-major block) = sum_k A(i, k) * B(k, :) for rows [i0, i1).
// A(i, k) = a[i * a_row + k * a_col]; B is row-major [k, n] when b_transposed is false and
// row-major [n, k] when true.
template <typename T>
void matmul_rows(const T* a, int64_t a_row, int64_t a_col, const T* b, bool b_transposed, T* c,
                 int64_t i0, int64_t i1, int64_t k_len, int64_t n) {
    for (int64_t i = i0; i < i1; ++i) {
        T* __restrict crow = c + i * n;
        if (b_transposed) {
            for (int64_t j = 0; j < n; ++j) {
                const T* brow = b + j * k_len;
                T acc = 0;
                for (int64_t k = 0; k < k_len; ++k) acc += a[i * a_row + k * a_col] * brow[k];
                crow[j] = acc;
            }
            continue;
        }
        std::fill_n(crow, n, T(0));
        for (int64_t k = 0; k < k_len; ++k) {
            const T av = a[i * a_row + k * a_col];
            const T* __restrict brow = b + k * n;
            for (int64_t j = 0; j < n; ++j) crow[j] += av * brow[j];
        }
    }
}

// MatMul (opset 1-19): A [..., M, K], B [..., K, N] -> [broadcast(batch), M, N]. A 1-D A is
// [1, K] with the M dim dropped from the result; a 1-D B is [K, 1] with the N dim dropped.
class MatMulKernel final : public Kernel {
public:
    Status prepare(PrepareContext& ctx) override {
        const Node& node = ctx.node;
        LOWBIT_TRY(check_known_attrs(node, {}));
        LOWBIT_TRY(check_input_count(ctx, 2, 2));
        const TensorInfo& a = ctx.inputs[0];
        const TensorInfo& b = ctx.inputs[1];
        LOWBIT_TRY(require_dtype(node, "A", a.dtype, {DType::Float32, DType::Float64}));
        if (b.dtype != a.dtype) {
            return invalid("{}: A is {} but B is {}", node.describe(), dtype_name(a.dtype),
                           dtype_name(b.dtype));
        }
        if (a.shape.empty() || b.shape.empty()) {
            return invalid("{}: inputs {} and {} must have rank >= 1", node.describe(),
                           shape_str(a.shape), shape_str(b.shape));
        }
        Shape sa = a.shape.size() == 1 ? Shape{1, a.shape[0]} : a.shape;
        Shape sb = b.shape.size() == 1 ? Shape{b.shape[0], 1} : b.shape;
        m_ = sa[sa.size() - 2];
        k_ = sa.back();
        n_ = sb.back();
        if (sb[sb.size() - 2] != k_) {
            return invalid("{}: A {} and B {} disagree on K", node.describe(), shape_str(a.shape),
                           shape_str(b.shape));
        }
        const Shape batch_a(sa.begin(), sa.end() - 2);
        const Shape batch_b(sb.begin(), sb.end() - 2);
        auto batch = broadcast_shapes(batch_a, batch_b);
        if (!batch.is_ok()) return batch.status().with_context(node.describe());
        batch_ = *batch;
        a_strides_ = broadcast_strides(batch_a, batch_);
        b_strides_ = broadcast_strides(batch_b, batch_);
        Shape out = batch_;
        if (a.shape.size() > 1) out.push_back(m_);
        if (b.shape.size() > 1) out.push_back(n_);
        ctx.outputs[0].dtype = a.dtype;
        ctx.outputs[0].shape = std::move(out);
        return Status::ok();
    }

    Status run(RunContext& ctx) override {
        if (ctx.inputs[0].dtype() == DType::Float64) return run_typed<double>(ctx);
        return run_typed<float>(ctx);
    }

private:
    template <typename T>
    Status run_typed(RunContext& ctx) {
        const T* a = ctx.inputs[0].data<T>();
        const T* b = ctx.inputs[1].data<T>();
        T* c = ctx.outputs[0].data<T>();
        const int64_t n_batch = shape_numel(batch_);
        const int64_t rows = n_batch * m_;
        const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, k_ * n_));
        ctx.pool.parallel_for(rows, grain, [&](int64_t begin, int64_t end) {
            int64_t r = begin;
            while (r < end) {
                const int64_t bi = r / m_;
                const int64_t i0 = r % m_;
                const int64_t i1 = std::min(m_, i0 + (end - r));
                // Batch offsets (in matrices) of A and B for batch index bi.
                int64_t off_a = 0, off_b = 0, rem = bi;
                for (size_t d = batch_.size(); d-- > 0;) {
                    const int64_t idx = rem % batch_[d];
                    rem /= batch_[d];
                    off_a += idx * a_strides_[d];
                    off_b += idx * b_strides_[d];
                }
                matmul_rows(a + off_a * m_ * k_, k_, 1, b + off_b * k_ * n_, false,
                            c + bi * m_ * n_, i0, i1, k_, n_);
                r += i1 - i0;
            }
        });
        return Status::ok();
    }

    int64_t m_ = 0, k_ = 0, n_ = 0;
    Shape batch_;
    std::vector<int64_t> a_strides_, b_strides_;
};

// Gemm (opset 7-19): A [M, K] (or [K, M] with transA), B [K, N] (or [N, K] with transB),
// C? (unidirectionally broadcastable to [M, N]) -> Y = alpha * A' B' + beta * C.
class GemmKernel final : public Kernel {
public:
    Status prepare(PrepareContext& ctx) override {
        const Node& node = ctx.node;
        LOWBIT_TRY(check_known_attrs(node, {"alpha", "beta", "transA", "transB"}));
        LOWBIT_TRY(check_input_count(ctx, 2, 3));
        const TensorInfo& a = ctx.inputs[0];
        const TensorInfo& b = ctx.inputs[1];
        LOWBIT_TRY(require_dtype(node, "A", a.dtype, {DType::Float32, DType::Float64}));
        if (b.dtype != a.dtype || (ctx.has_input(2) && ctx.inputs[2].dtype != a.dtype)) {
            return invalid("{}: A, B and C must share one dtype", node.describe());
        }
        if (a.shape.size() != 2 || b.shape.size() != 2) {
            return invalid("{}: A {} and B {} must be 2-D", node.describe(), shape_str(a.shape),
                           shape_str(b.shape));
        }
        LOWBIT_ASSIGN(alpha_, float_attr(node, "alpha", 1.0f));
        LOWBIT_ASSIGN(beta_, float_attr(node, "beta", 1.0f));
        LOWBIT_ASSIGN(int64_t ta, int_attr(node, "transA", 0));
        LOWBIT_ASSIGN(int64_t tb, int_attr(node, "transB", 0));
        trans_a_ = ta != 0;
        trans_b_ = tb != 0;
        m_ = trans_a_ ? a.shape[1] : a.shape[0];
        k_ = trans_a_ ? a.shape[0] : a.shape[1];
        n_ = trans_b_ ? b.shape[0] : b.shape[1];
        const int64_t kb = trans_b_ ? b.shape[1] : b.shape[0];
        if (kb != k_) {
            return invalid("{}: A {} and B {} disagree on K (transA={}, transB={})",
                           node.describe(), shape_str(a.shape), shape_str(b.shape), ta, tb);
        }
        if (ctx.has_input(2)) {
            const Shape& c = ctx.inputs[2].shape;
            if (!broadcastable_to(c, {m_, n_})) {
                return invalid("{}: C {} cannot be broadcast to [{},{}]", node.describe(),
                               shape_str(c), m_, n_);
            }
            c_strides_ = broadcast_strides(c, {m_, n_});
        }
        ctx.outputs[0].dtype = a.dtype;
        ctx.outputs[0].shape = {m_, n_};
        return Status::ok();
    }

    Status run(RunContext& ctx) override {
        if (ctx.inputs[0].dtype() == DType::Float64) return run_typed<double>(ctx);
        return run_typed<float>(ctx);
    }

private:
    template <typename T>
    Status run_typed(RunContext& ctx) {
        const T* a = ctx.inputs[0].data<T>();
        const T* b = ctx.inputs[1].data<T>();
        const T* c =
            ctx.inputs.size() > 2 && !ctx.inputs[2].empty() ? ctx.inputs[2].data<T>() : nullptr;
        T* y = ctx.outputs[0].data<T>();
        const int64_t a_row = trans_a_ ? 1 : k_;
        const int64_t a_col = trans_a_ ? m_ : 1;
        const auto alpha = static_cast<T>(alpha_);
        const auto beta = static_cast<T>(beta_);
        const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, k_ * n_));
        ctx.pool.parallel_for(m_, grain, [&](int64_t i0, int64_t i1) {
            matmul_rows(a, a_row, a_col, b, trans_b_, y, i0, i1, k_, n_);
            for (int64_t i = i0; i < i1; ++i) {
                for (int64_t j = 0; j < n_; ++j) {
                    T v = alpha * y[i * n_ + j];
                    if (c) v += beta * c[i * c_strides_[0] + j * c_strides_[1]];
                    y[i * n_ + j] = v;
                }
            }
        });
        return Status::ok();
    }

    float alpha_ = 1, beta_ = 1;
    bool trans_a_ = false, trans_b_ = false;
    int64_t m_ = 0, k_ = 0, n_ = 0;
    std::vector<int64_t> c_strides_;
};

}  // namespace

void register_matmul_kernels(KernelRegistry& r) {
    register_kernel<MatMulKernel>(r, "MatMul");
    register_kernel<GemmKernel>(r, "Gemm");
}

}  // namespace lowbit::ref
