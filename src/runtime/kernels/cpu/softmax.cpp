// Softmax, float32, plain layout. The input is viewed as [outer, n, inner] with the softmax
// taken over n: opset >= 13 reduces the one `axis` (inner = product of the dims after it);
// opset < 13 flattens [axis:] into n (inner = 1). Each slice subtracts its max before exp, as
// the reference does; exp comes from vmath.h.
#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "runtime/kernels/cpu/ops.h"
#include "runtime/kernels/cpu/vmath.h"

namespace lowbit::cpu {
namespace {

class SoftmaxOp final : public FastOp {
public:
    SoftmaxOp(int64_t outer, int64_t n, int64_t inner) : outer_(outer), n_(n), inner_(inner) {}

    Status run(std::span<const Tensor> in, std::span<Tensor> out, const ThreadPool& pool) override {
        const float* x = in[0].data<float>();
        float* y = out[0].data<float>();
        if (inner_ == 1) {
            pool.parallel_for(outer_, std::max<int64_t>(1, 4096 / n_), [&](int64_t b, int64_t e) {
                for (int64_t r = b; r < e; ++r) row(x + r * n_, y + r * n_);
            });
            return Status::ok();
        }
        // Strided: vectorize across `inner`, in column blocks so the running max/sum stay in
        // a small buffer.
        constexpr int64_t kBlock = 256;
        const int64_t blocks = (inner_ + kBlock - 1) / kBlock;
        pool.parallel_for(outer_ * blocks, 1, [&](int64_t b, int64_t e) {
            float mx[kBlock], sum[kBlock];
            for (int64_t t = b; t < e; ++t) {
                const int64_t o = t / blocks;
                const int64_t j0 = (t % blocks) * kBlock;
                const int64_t len = std::min(kBlock, inner_ - j0);
                const float* xs = x + o * n_ * inner_ + j0;
                float* ys = y + o * n_ * inner_ + j0;
                std::fill_n(mx, len, -std::numeric_limits<float>::infinity());
                std::fill_n(sum, len, 0.0f);
                for (int64_t i = 0; i < n_; ++i) {
                    const float* xr = xs + i * inner_;
                    for (int64_t j = 0; j < len; ++j) mx[j] = std::max(mx[j], xr[j]);
                }
                for (int64_t i = 0; i < n_; ++i) {
                    const float* xr = xs + i * inner_;
                    float* yr = ys + i * inner_;
                    for (int64_t j = 0; j < len; ++j) yr[j] = xr[j] - mx[j];
                    exp_f32(yr, yr, len);
                    for (int64_t j = 0; j < len; ++j) sum[j] += yr[j];
                }
                for (int64_t j = 0; j < len; ++j) sum[j] = 1.0f / sum[j];
                for (int64_t i = 0; i < n_; ++i) {
                    float* yr = ys + i * inner_;
                    for (int64_t j = 0; j < len; ++j) yr[j] *= sum[j];
                }
            }
        });
        return Status::ok();
    }

    std::string describe() const override {
        return fmt::format("Softmax {}x{}x{}", outer_, n_, inner_);
    }

private:
    void row(const float* x, float* y) const {
        float mx = -std::numeric_limits<float>::infinity();
        for (int64_t i = 0; i < n_; ++i) mx = std::max(mx, x[i]);
        for (int64_t i = 0; i < n_; ++i) y[i] = x[i] - mx;
        exp_f32(y, y, n_);
        float sum = 0;
        for (int64_t i = 0; i < n_; ++i) sum += y[i];
        const float inv = 1.0f / sum;
        for (int64_t i = 0; i < n_; ++i) y[i] *= inv;
    }

    int64_t outer_, n_, inner_;
};

}  // namespace

std::unique_ptr<FastOp> make_softmax(const Node& node, int64_t opset,
                                     std::span<const Operand> ins) {
    if (ins.size() != 1 || ins[0].dtype != DType::Float32) return nullptr;
    const Shape& s = ins[0].shape;
    const int64_t rank = static_cast<int64_t>(s.size());
    if (rank == 0 || shape_numel(s) == 0) return nullptr;
    int64_t axis = node.attr_int("axis", opset >= 13 ? -1 : 1);
    if (axis < -rank || axis >= rank) return nullptr;
    if (axis < 0) axis += rank;
    int64_t outer = 1, n = 1, inner = 1;
    for (int64_t i = 0; i < axis; ++i) outer *= s[i];
    if (opset >= 13) {
        n = s[axis];
        for (int64_t i = axis + 1; i < rank; ++i) inner *= s[i];
    } else {
        for (int64_t i = axis; i < rank; ++i) n *= s[i];
    }
    return std::make_unique<SoftmaxOp>(outer, n, inner);
}

}  // namespace lowbit::cpu
