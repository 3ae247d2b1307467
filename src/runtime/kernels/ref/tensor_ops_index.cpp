// Reference indexing kernels: Gather, GatherElements, TopK.
// Gather/GatherElements move bytes (any fixed-size dtype); indices are int32 or int64, negative
// values count from the end, and an out-of-range index fails run() naming the node.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "runtime/kernels/ref/op_util.h"
#include "runtime/registry.h"

namespace lowbit::ref {
namespace {

int64_t index_at(const Tensor& indices, int64_t i) {
    return indices.dtype() == DType::Int64 ? indices.data<int64_t>()[i]
                                           : indices.data<int32_t>()[i];
}

// Gather (opset 1-19): data [d0..dr), indices (any shape) ->
// data.shape[:axis] + indices.shape + data.shape[axis+1:]; axis default 0.
class GatherKernel final : public Kernel {
public:
    Status prepare(PrepareContext& ctx) override {
        const Node& node = ctx.node;
        LOWBIT_TRY(check_known_attrs(node, {"axis"}));
        LOWBIT_TRY(check_input_count(ctx, 2, 2));
        const TensorInfo& data = ctx.inputs[0];
        const TensorInfo& ind = ctx.inputs[1];
        LOWBIT_TRY(require_movable(node, "data", data.dtype));
        LOWBIT_TRY(require_dtype(node, "indices", ind.dtype, {DType::Int64, DType::Int32}));
        const auto rank = static_cast<int64_t>(data.shape.size());
        if (rank == 0) return invalid("{}: data must have rank >= 1", node.describe());
        LOWBIT_ASSIGN(int64_t axis_attr, int_attr(node, "axis", 0));
        LOWBIT_ASSIGN(int64_t axis, normalize_axis(axis_attr, rank, node, "axis"));
        axis_ = static_cast<size_t>(axis);
        Shape out(data.shape.begin(), data.shape.begin() + axis);
        out.insert(out.end(), ind.shape.begin(), ind.shape.end());
        out.insert(out.end(), data.shape.begin() + axis + 1, data.shape.end());
        ctx.outputs[0].dtype = data.dtype;
        ctx.outputs[0].shape = std::move(out);
        return Status::ok();
    }

    Status run(RunContext& ctx) override {
        const Tensor& data = ctx.inputs[0];
        const Tensor& ind = ctx.inputs[1];
        Tensor& y = ctx.outputs[0];
        const auto elem = static_cast<int64_t>(dtype_size(data.dtype()));
        const int64_t outer = dims_product(data.shape(), 0, axis_);
        const int64_t d = data.dim(axis_);
        const int64_t block = dims_product(data.shape(), axis_ + 1, data.rank()) * elem;
        const int64_t n = ind.numel();
        const auto* src = static_cast<const char*>(data.raw());
        auto* dst = static_cast<char*>(y.raw());
        for (int64_t j = 0; j < n; ++j) {
            const int64_t raw = index_at(ind, j);
            if (raw < -d || raw >= d) {
                return invalid("{}: index {} is out of range for axis {} of size {}",
                               ctx.node.describe(), raw, axis_, d);
            }
        }
        for (int64_t o = 0; o < outer; ++o) {
            for (int64_t j = 0; j < n; ++j) {
                int64_t k = index_at(ind, j);
                if (k < 0) k += d;
                std::memcpy(dst + (o * n + j) * block, src + (o * d + k) * block,
                            static_cast<size_t>(block));
            }
        }
        return Status::ok();
    }

private:
    size_t axis_ = 0;
};

// GatherElements (opset 11-19): data and indices of equal rank -> output shaped like indices,
// out[i0..i(axis)..] = data[i0..indices[i0..]..]. Off-axis index dims must not exceed data's.
class GatherElementsKernel final : public Kernel {
public:
    Status prepare(PrepareContext& ctx) override {
        const Node& node = ctx.node;
        LOWBIT_TRY(check_known_attrs(node, {"axis"}));
        LOWBIT_TRY(check_input_count(ctx, 2, 2));
        const TensorInfo& data = ctx.inputs[0];
        const TensorInfo& ind = ctx.inputs[1];
        LOWBIT_TRY(require_movable(node, "data", data.dtype));
        LOWBIT_TRY(require_dtype(node, "indices", ind.dtype, {DType::Int64, DType::Int32}));
        const auto rank = static_cast<int64_t>(data.shape.size());
        if (rank == 0 || ind.shape.size() != data.shape.size()) {
            return invalid("{}: data {} and indices {} must have the same rank >= 1",
                           node.describe(), shape_str(data.shape), shape_str(ind.shape));
        }
        LOWBIT_ASSIGN(int64_t axis_attr, int_attr(node, "axis", 0));
        LOWBIT_ASSIGN(int64_t axis, normalize_axis(axis_attr, rank, node, "axis"));
        for (size_t i = 0; i < data.shape.size(); ++i) {
            if (static_cast<int64_t>(i) != axis && ind.shape[i] > data.shape[i]) {
                return invalid("{}: indices {} exceed data {} on axis {}", node.describe(),
                               shape_str(ind.shape), shape_str(data.shape), i);
            }
        }
        axis_ = static_cast<size_t>(axis);
        ctx.outputs[0].dtype = data.dtype;
        ctx.outputs[0].shape = ind.shape;
        return Status::ok();
    }

    Status run(RunContext& ctx) override {
        const Tensor& data = ctx.inputs[0];
        const Tensor& ind = ctx.inputs[1];
        Tensor& y = ctx.outputs[0];
        const size_t elem = dtype_size(data.dtype());
        const size_t rank = data.rank();
        const std::vector<int64_t> st = contiguous_strides(data.shape());
        const int64_t d = data.dim(axis_);
        const auto* src = static_cast<const char*>(data.raw());
        auto* dst = static_cast<char*>(y.raw());
        std::vector<int64_t> idx(rank, 0);
        int64_t base = 0;  // data offset of idx with the axis coordinate set to 0
        for (int64_t i = 0; i < y.numel(); ++i) {
            int64_t k = index_at(ind, i);
            if (k < -d || k >= d) {
                return invalid("{}: index {} is out of range for axis {} of size {}",
                               ctx.node.describe(), k, axis_, d);
            }
            if (k < 0) k += d;
            std::memcpy(dst + static_cast<size_t>(i) * elem,
                        src + static_cast<size_t>(base + k * st[axis_]) * elem, elem);
            for (size_t a = rank; a-- > 0;) {
                if (a != axis_) base += st[a];
                if (++idx[a] < y.dim(a)) break;
                if (a != axis_) base -= st[a] * y.dim(a);
                idx[a] = 0;
            }
        }
        return Status::ok();
    }

private:
    size_t axis_ = 0;
};

// Orders values for TopK. NaN ranks above every number (as in NumPy's sort, where NaN sorts
// last), so `largest` returns NaNs first; equal values keep the lower index first, as ORT does.
template <typename T>
bool ranks_higher(T a, T b) {
    if constexpr (std::is_floating_point_v<T>) {
        if (std::isnan(a)) return !std::isnan(b);
        if (std::isnan(b)) return false;
    }
    return a > b;
}

// TopK (opset 1-19): X [.., d(axis), ..], K (int64 [1], known at plan time; attribute `k` before
// opset 10) -> Values, Indices (int64), both [.., K, ..]. largest (default 1) picks the largest,
// sorted=0 is allowed and returns the sorted order (the spec leaves the order free then).
class TopKKernel final : public Kernel {
public:
    Status prepare(PrepareContext& ctx) override {
        const Node& node = ctx.node;
        const TensorInfo& x = ctx.inputs.empty() ? TensorInfo{} : ctx.inputs[0];
        int64_t k = 0;
        if (ctx.opset >= 10) {
            LOWBIT_TRY(check_known_attrs(node, {"axis", "largest", "sorted"}));
            LOWBIT_TRY(check_input_count(ctx, 2, 2));
            LOWBIT_ASSIGN(std::vector<int64_t> kv, plan_time_ints(ctx, 1, "K"));
            if (kv.size() != 1) {
                return invalid("{}: K must hold one value, has {}", node.describe(), kv.size());
            }
            k = kv[0];
        } else {
            LOWBIT_TRY(check_known_attrs(node, {"axis", "k"}));
            LOWBIT_TRY(check_input_count(ctx, 1, 1));
            LOWBIT_ASSIGN(k, int_attr(node, "k", -1));
        }
        LOWBIT_TRY(require_dtype(node, "X", x.dtype,
                                 {DType::Float32, DType::Float64, DType::Int8, DType::UInt8,
                                  DType::Int16, DType::Int32, DType::Int64}));
        const auto rank = static_cast<int64_t>(x.shape.size());
        if (rank == 0) return invalid("{}: X must have rank >= 1", node.describe());
        LOWBIT_ASSIGN(int64_t axis_attr, int_attr(node, "axis", -1));
        LOWBIT_ASSIGN(int64_t axis, normalize_axis(axis_attr, rank, node, "axis"));
        LOWBIT_ASSIGN(int64_t largest, int_attr(node, "largest", 1));
        LOWBIT_ASSIGN(int64_t sorted, int_attr(node, "sorted", 1));
        (void)sorted;
        axis_ = static_cast<size_t>(axis);
        largest_ = largest != 0;
        const int64_t d = x.shape[axis_];
        if (k < 0 || k > d) {
            return invalid("{}: K {} is out of range for axis {} of size {} (input {})",
                           node.describe(), k, axis, d, shape_str(x.shape));
        }
        k_ = k;
        Shape out = x.shape;
        out[axis_] = k;
        ctx.outputs[0].dtype = x.dtype;
        ctx.outputs[0].shape = out;
        if (ctx.outputs.size() > 1) {
            ctx.outputs[1].dtype = DType::Int64;
            ctx.outputs[1].shape = out;
        }
        return Status::ok();
    }

    Status run(RunContext& ctx) override {
        switch (ctx.inputs[0].dtype()) {
            case DType::Float32: return run_typed<float>(ctx);
            case DType::Float64: return run_typed<double>(ctx);
            case DType::Int8: return run_typed<int8_t>(ctx);
            case DType::UInt8: return run_typed<uint8_t>(ctx);
            case DType::Int16: return run_typed<int16_t>(ctx);
            case DType::Int32: return run_typed<int32_t>(ctx);
            default: return run_typed<int64_t>(ctx);
        }
    }

private:
    template <typename T>
    Status run_typed(RunContext& ctx) {
        const Tensor& x = ctx.inputs[0];
        Tensor* values = ctx.outputs.empty() || ctx.outputs[0].empty() ? nullptr : &ctx.outputs[0];
        Tensor* indices =
            ctx.outputs.size() < 2 || ctx.outputs[1].empty() ? nullptr : &ctx.outputs[1];
        const int64_t outer = dims_product(x.shape(), 0, axis_);
        const int64_t d = x.dim(axis_);
        const int64_t inner = dims_product(x.shape(), axis_ + 1, x.rank());
        const T* src = x.data<T>();
        std::vector<int64_t> order(static_cast<size_t>(d));
        std::vector<T> row(static_cast<size_t>(d));
        for (int64_t o = 0; o < outer; ++o) {
            for (int64_t in = 0; in < inner; ++in) {
                for (int64_t j = 0; j < d; ++j)
                    row[static_cast<size_t>(j)] = src[(o * d + j) * inner + in];
                std::iota(order.begin(), order.end(), int64_t{0});
                auto before = [&](int64_t a, int64_t b) {
                    const T va = row[static_cast<size_t>(a)];
                    const T vb = row[static_cast<size_t>(b)];
                    if (largest_ ? ranks_higher(va, vb) : ranks_higher(vb, va)) return true;
                    if (largest_ ? ranks_higher(vb, va) : ranks_higher(va, vb)) return false;
                    return a < b;
                };
                std::partial_sort(order.begin(), order.begin() + k_, order.end(), before);
                for (int64_t j = 0; j < k_; ++j) {
                    const int64_t at = (o * k_ + j) * inner + in;
                    const int64_t from = order[static_cast<size_t>(j)];
                    if (values) values->data<T>()[at] = row[static_cast<size_t>(from)];
                    if (indices) indices->data<int64_t>()[at] = from;
                }
            }
        }
        return Status::ok();
    }

    size_t axis_ = 0;
    bool largest_ = true;
    int64_t k_ = 0;
};

}  // namespace

void register_tensor_index_kernels(KernelRegistry& r) {
    register_kernel<GatherKernel>(r, "Gather");
    register_kernel<GatherElementsKernel>(r, "GatherElements");
    register_kernel<TopKKernel>(r, "TopK");
}

}  // namespace lowbit::ref
