// Transpose (plain layout, any fixed-size dtype) for permutations that move the innermost
// axis: the output is walked as 2-D tiles over (the output axis that is contiguous in the input,
// the output's innermost axis), so that both reads and writes stay within cache lines. YOLOv10's
// attention block and end-to-end head transpose [.., C, N] <-> [.., N, C] this way; the reference
// kernel copies those element by element. Permutations that keep the innermost axis in place
// copy whole rows and are left to the reference kernel.
#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "runtime/kernels/cpu/ops.h"

namespace lowbit::cpu {
namespace {

constexpr int64_t kTile = 16;

class TransposeOp final : public FastOp {
public:
    // out_dims: output shape with size-1 axes dropped; src_strides: input element stride of
    // each of those axes; q: the axis with input stride 1 (not the last).
    TransposeOp(Shape out_dims, std::vector<int64_t> src_strides, size_t q, size_t elem)
        : dims_(std::move(out_dims)), src_strides_(std::move(src_strides)), q_(q), elem_(elem) {
        dst_strides_.assign(dims_.size(), 1);
        for (size_t i = dims_.size() - 1; i-- > 0;)
            dst_strides_[i] = dst_strides_[i + 1] * dims_[i + 1];
        for (size_t i = 0; i < dims_.size(); ++i) {
            if (i != q_ && i + 1 != dims_.size()) outer_.push_back(i);
        }
        outer_count_ = 1;
        for (size_t i : outer_) outer_count_ *= dims_[i];
    }

    Status run(std::span<const Tensor> in, std::span<Tensor> out, const ThreadPool& pool) override {
        switch (elem_) {
            case 1: go<uint8_t>(in[0], out[0], pool); break;
            case 2: go<uint16_t>(in[0], out[0], pool); break;
            case 4: go<uint32_t>(in[0], out[0], pool); break;
            default: go<uint64_t>(in[0], out[0], pool); break;
        }
        return Status::ok();
    }

    std::string describe() const override {
        return fmt::format("Transpose 2-D tiled ({}B)", elem_);
    }

private:
    template <typename T>
    void go(const Tensor& x, Tensor& y, const ThreadPool& pool) const {
        const T* src = x.data<T>();
        T* dst = y.data<T>();
        const size_t last = dims_.size() - 1;
        const int64_t nq = dims_[q_], nl = dims_[last];
        const int64_t tq = (nq + kTile - 1) / kTile, tl = (nl + kTile - 1) / kTile;
        const int64_t sl = src_strides_[last], dq = dst_strides_[q_];
        pool.parallel_for(outer_count_ * tq, std::max<int64_t>(1, 4096 / (kTile * nl)),
                          [&](int64_t b, int64_t e) {
                              for (int64_t t = b; t < e; ++t) {
                                  int64_t o = t / tq;
                                  const int64_t i0 = (t % tq) * kTile;
                                  const int64_t i1 = std::min(nq, i0 + kTile);
                                  int64_t s_base = 0, d_base = 0;
                                  for (size_t k = outer_.size(); k-- > 0;) {
                                      const size_t ax = outer_[k];
                                      const int64_t idx = o % dims_[ax];
                                      o /= dims_[ax];
                                      s_base += idx * src_strides_[ax];
                                      d_base += idx * dst_strides_[ax];
                                  }
                                  for (int64_t j0 = 0; j0 < tl * kTile; j0 += kTile) {
                                      const int64_t j1 = std::min(nl, j0 + kTile);
                                      for (int64_t i = i0; i < i1; ++i) {
                                          const T* s = src + s_base + i;
                                          T* d = dst + d_base + i * dq;
                                          for (int64_t j = j0; j < j1; ++j) d[j] = s[j * sl];
                                      }
                                  }
                              }
                          });
    }

    Shape dims_;
    std::vector<int64_t> src_strides_, dst_strides_;
    size_t q_;
    size_t elem_;
    std::vector<size_t> outer_;
    int64_t outer_count_ = 1;
};

}  // namespace

std::unique_ptr<FastOp> make_transpose(const Node& node, std::span<const Operand> ins) {
    if (ins.size() != 1) return nullptr;
    const Shape& x = ins[0].shape;
    const size_t rank = x.size();
    const size_t elem = dtype_size(ins[0].dtype);
    if (rank < 2 || shape_numel(x) == 0 || (elem != 1 && elem != 2 && elem != 4 && elem != 8)) {
        return nullptr;
    }
    std::vector<int64_t> perm = node.attr_ints("perm");
    if (perm.empty()) {
        for (size_t i = rank; i-- > 0;) perm.push_back(static_cast<int64_t>(i));
    }
    if (perm.size() != rank) return nullptr;
    std::vector<int64_t> in_strides(rank, 1);
    for (size_t i = rank - 1; i-- > 0;) in_strides[i] = in_strides[i + 1] * x[i + 1];
    // Output axes with size > 1 and their input strides.
    Shape dims;
    std::vector<int64_t> strides;
    for (int64_t p : perm) {
        if (p < 0 || p >= static_cast<int64_t>(rank)) return nullptr;
        if (x[static_cast<size_t>(p)] == 1) continue;
        dims.push_back(x[static_cast<size_t>(p)]);
        strides.push_back(in_strides[static_cast<size_t>(p)]);
    }
    if (dims.size() < 2 || strides.back() == 1) return nullptr;  // rows stay contiguous
    size_t q = dims.size();
    for (size_t i = 0; i < dims.size(); ++i) {
        if (strides[i] == 1) q = i;
    }
    if (q == dims.size()) return nullptr;
    return std::make_unique<TransposeOp>(std::move(dims), std::move(strides), q, elem);
}

}  // namespace lowbit::cpu
