// Reference kernels for shape and constant ops: Constant, Identity, Shape, Size, Reshape, Flatten,
// Squeeze, Unsqueeze, ConstantOfShape, Range. The other tensor ops live in tensor_ops_copy.cpp
// (Transpose, Concat, Split, Slice, Expand, Tile, Pad) and tensor_ops_index.cpp (Gather,
// GatherElements, TopK). Data movement is by bytes, so every fixed-size dtype works.
// Parameter inputs (shapes, axes) must be known at plan time: the engine plans static shapes.
#include <cmath>
#include <cstring>
#include <limits>

#include "runtime/kernels/ref/families.h"
#include "runtime/kernels/ref/op_util.h"
#include "runtime/registry.h"

namespace lowbit {
namespace ref {
namespace {

void copy_bytes(const Tensor& in, Tensor& out) {
    if (out.nbytes() > 0 && in.raw() != out.raw()) std::memcpy(out.raw(), in.raw(), out.nbytes());
}

// Base for ops whose output is fully known in prepare(): the executor normally never runs them,
// but run() still produces the same bytes (e.g. when the caller does not fold).
class PlanTimeValueKernel : public Kernel {
public:
    Status run(RunContext& ctx) override {
        copy_bytes(value_, ctx.outputs[0]);
        return Status::ok();
    }

protected:
    Status set_value(PrepareContext& ctx, Tensor v) {
        value_ = v;
        ctx.set_output_value(0, std::move(v));
        return Status::ok();
    }

private:
    Tensor value_;
};

// Constant (opset 1-19). Output = the one value attribute: `value` (any tensor), `value_float`
// (float32 scalar), `value_floats` (float32 1-D), `value_int` (int64 scalar), `value_ints`
// (int64 1-D). Sparse and string constants are rejected.
class ConstantKernel final : public PlanTimeValueKernel {
public:
    Status prepare(PrepareContext& ctx) override {
        const Node& node = ctx.node;
        LOWBIT_TRY(check_known_attrs(
            node, {"value", "value_float", "value_floats", "value_int", "value_ints",
                   "sparse_value", "value_string", "value_strings"}));
        if (node.attrs.size() != 1) {
            return invalid("{}: exactly one value attribute is required, got {}", node.describe(),
                           node.attrs.size());
        }
        const auto& [key, a] = *node.attrs.begin();
        if (key == "sparse_value" || key == "value_string" || key == "value_strings") {
            return unsupported("{}: attribute '{}' is not supported (sparse and string constants)",
                               node.describe(), key);
        }
        if (key == "value") {
            LOWBIT_TRY(check_attr_kind(node, a, key, Attr::Kind::Tensor));
            LOWBIT_TRY(require_movable(node, "value", a.t.dtype()));
            if (a.t.empty() && a.t.numel() != 0) {
                return invalid("{}: attribute 'value' holds no data", node.describe());
            }
            return set_value(ctx, a.t.empty() ? Tensor(a.t.dtype(), a.t.shape()) : a.t);
        }
        if (key == "value_float") {
            LOWBIT_TRY(check_attr_kind(node, a, key, Attr::Kind::Float));
            return set_value(ctx, Tensor::from_vector<float>(DType::Float32, {}, {a.f}));
        }
        if (key == "value_floats") {
            LOWBIT_TRY(check_attr_kind(node, a, key, Attr::Kind::Floats));
            return set_value(
                ctx, Tensor::from_vector<float>(DType::Float32,
                                                {static_cast<int64_t>(a.floats.size())}, a.floats));
        }
        if (key == "value_int") {
            LOWBIT_TRY(check_attr_kind(node, a, key, Attr::Kind::Int));
            return set_value(ctx, Tensor::from_vector<int64_t>(DType::Int64, {}, {a.i}));
        }
        LOWBIT_TRY(check_attr_kind(node, a, key, Attr::Kind::Ints));
        return set_value(ctx, Tensor::from_vector<int64_t>(
                                  DType::Int64, {static_cast<int64_t>(a.ints.size())}, a.ints));
    }
};

// Identity: Y = X (same dtype and shape).
class IdentityKernel final : public Kernel {
public:
    Status prepare(PrepareContext& ctx) override {
        LOWBIT_TRY(check_known_attrs(ctx.node, {}));
        LOWBIT_TRY(check_input_count(ctx, 1, 1));
        LOWBIT_TRY(require_movable(ctx.node, "input", ctx.inputs[0].dtype));
        ctx.outputs[0].dtype = ctx.inputs[0].dtype;
        ctx.outputs[0].shape = ctx.inputs[0].shape;
        return Status::ok();
    }
    Status run(RunContext& ctx) override {
        copy_bytes(ctx.inputs[0], ctx.outputs[0]);
        return Status::ok();
    }
    std::vector<int64_t> output_runs_of_input() const override { return {0}; }
};

// Shape (opset 1-19): int64 [end - start] holding data.shape[start:end]. start/end (opset 15)
// are clamped to [0, rank] after adding rank to negative values.
class ShapeKernel final : public PlanTimeValueKernel {
public:
    Status prepare(PrepareContext& ctx) override {
        LOWBIT_TRY(check_known_attrs(ctx.node, {"start", "end"}));
        LOWBIT_TRY(check_input_count(ctx, 1, 1));
        const Shape& s = ctx.inputs[0].shape;
        const auto rank = static_cast<int64_t>(s.size());
        LOWBIT_ASSIGN(int64_t start, int_attr(ctx.node, "start", 0));
        LOWBIT_ASSIGN(int64_t end, int_attr(ctx.node, "end", rank));
        if (start < 0) start += rank;
        if (end < 0) end += rank;
        start = std::clamp<int64_t>(start, 0, rank);
        end = std::clamp<int64_t>(end, 0, rank);
        std::vector<int64_t> dims;
        for (int64_t i = start; i < end; ++i) dims.push_back(s[static_cast<size_t>(i)]);
        return set_value(ctx, Tensor::from_vector<int64_t>(
                                  DType::Int64, {static_cast<int64_t>(dims.size())}, dims));
    }
};

// Size: int64 scalar = number of elements of the input.
class SizeKernel final : public PlanTimeValueKernel {
public:
    Status prepare(PrepareContext& ctx) override {
        LOWBIT_TRY(check_known_attrs(ctx.node, {}));
        LOWBIT_TRY(check_input_count(ctx, 1, 1));
        return set_value(ctx, Tensor::from_vector<int64_t>(DType::Int64, {},
                                                           {shape_numel(ctx.inputs[0].shape)}));
    }
};

// Base for ops that only change the shape: run() copies the bytes.
class ReshapeLikeKernel : public Kernel {
public:
    Status run(RunContext& ctx) override {
        copy_bytes(ctx.inputs[0], ctx.outputs[0]);
        return Status::ok();
    }
    std::vector<int64_t> output_runs_of_input() const override { return {0}; }

protected:
    Status set_output(PrepareContext& ctx, Shape out) {
        const TensorInfo& in = ctx.inputs[0];
        LOWBIT_TRY(require_movable(ctx.node, "data", in.dtype));
        if (shape_numel(out) != shape_numel(in.shape)) {
            return invalid("{}: cannot reshape {} ({} elements) to {} ({} elements)",
                           ctx.node.describe(), shape_str(in.shape), shape_numel(in.shape),
                           shape_str(out), shape_numel(out));
        }
        ctx.outputs[0].dtype = in.dtype;
        ctx.outputs[0].shape = std::move(out);
        return Status::ok();
    }
};

// Reshape (opset 5-19): data, shape (int64, known at plan time) -> reshaped. A 0 in `shape`
// copies the input dim at that position unless allowzero=1 (opset 14), where it means a real 0;
// one -1 is inferred from the remaining element count.
class ReshapeKernel final : public ReshapeLikeKernel {
public:
    Status prepare(PrepareContext& ctx) override {
        const Node& node = ctx.node;
        LOWBIT_TRY(check_known_attrs(node, {"allowzero"}));
        LOWBIT_TRY(check_input_count(ctx, 2, 2));
        LOWBIT_ASSIGN(int64_t allowzero, int_attr(node, "allowzero", 0));
        LOWBIT_ASSIGN(std::vector<int64_t> spec, plan_time_ints(ctx, 1, "shape"));
        const Shape& in = ctx.inputs[0].shape;
        Shape out(spec.size());
        int64_t infer_at = -1;
        int64_t known = 1;
        for (size_t i = 0; i < spec.size(); ++i) {
            int64_t v = spec[i];
            if (v == -1) {
                if (infer_at >= 0) {
                    return invalid("{}: shape {} has more than one -1", node.describe(),
                                   shape_str(spec));
                }
                infer_at = static_cast<int64_t>(i);
                continue;
            }
            if (v == 0 && allowzero == 0) {
                if (i >= in.size()) {
                    return invalid("{}: shape {} copies dim {} (0) but the input {} has rank {}",
                                   node.describe(), shape_str(spec), i, shape_str(in), in.size());
                }
                v = in[i];
            } else if (v < 0) {
                return invalid("{}: shape {} has invalid dim {}", node.describe(), shape_str(spec),
                               v);
            }
            out[i] = v;
            known *= v;
        }
        if (infer_at >= 0) {
            if (allowzero != 0 && std::find(spec.begin(), spec.end(), 0) != spec.end()) {
                return invalid("{}: shape {} has both 0 and -1 with allowzero=1", node.describe(),
                               shape_str(spec));
            }
            const int64_t total = shape_numel(in);
            if (known == 0 || total % known != 0) {
                return invalid("{}: cannot infer the -1 in shape {} for input {}", node.describe(),
                               shape_str(spec), shape_str(in));
            }
            out[static_cast<size_t>(infer_at)] = total / known;
        }
        return set_output(ctx, std::move(out));
    }
};

// Flatten (opset 1-19): [d0..dn) -> [prod(d0..d(axis-1)), prod(d(axis)..dn)], axis in
// [-rank, rank], default 1.
class FlattenKernel final : public ReshapeLikeKernel {
public:
    Status prepare(PrepareContext& ctx) override {
        const Node& node = ctx.node;
        LOWBIT_TRY(check_known_attrs(node, {"axis"}));
        LOWBIT_TRY(check_input_count(ctx, 1, 1));
        const Shape& in = ctx.inputs[0].shape;
        const auto rank = static_cast<int64_t>(in.size());
        LOWBIT_ASSIGN(int64_t axis, int_attr(node, "axis", 1));
        if (axis < -rank || axis > rank) {
            return invalid("{}: axis {} is out of range for rank {}", node.describe(), axis, rank);
        }
        if (axis < 0) axis += rank;
        const auto a = static_cast<size_t>(axis);
        return set_output(ctx, {dims_product(in, 0, a), dims_product(in, a, in.size())});
    }
};

// Squeeze: removes the listed size-1 axes (attribute `axes` before opset 13, optional input
// from 13); with no axes, every size-1 dim.
class SqueezeKernel final : public ReshapeLikeKernel {
public:
    Status prepare(PrepareContext& ctx) override {
        const Node& node = ctx.node;
        const bool axes_as_input = ctx.opset >= 13;
        if (axes_as_input) {
            LOWBIT_TRY(check_known_attrs(node, {}));
        } else {
            LOWBIT_TRY(check_known_attrs(node, {"axes"}));
        }
        LOWBIT_TRY(check_input_count(ctx, 1, axes_as_input ? 2 : 1));
        const Shape& in = ctx.inputs[0].shape;
        const auto rank = static_cast<int64_t>(in.size());
        std::vector<int64_t> axes;
        bool given = false;
        if (axes_as_input && ctx.has_input(1)) {
            LOWBIT_ASSIGN(axes, plan_time_ints(ctx, 1, "axes"));
            given = true;
        } else if (!axes_as_input && node.has_attr("axes")) {
            LOWBIT_ASSIGN(axes, ints_attr(node, "axes"));
            given = true;
        }
        LOWBIT_ASSIGN(axes, normalize_axis_list(node, "axes", axes, rank));
        Shape out;
        for (int64_t i = 0; i < rank; ++i) {
            const bool listed = std::find(axes.begin(), axes.end(), i) != axes.end();
            const int64_t d = in[static_cast<size_t>(i)];
            if (listed && d != 1) {
                return invalid("{}: cannot squeeze axis {} of size {} (input {})", node.describe(),
                               i, d, shape_str(in));
            }
            if (listed || (!given && d == 1)) continue;
            out.push_back(d);
        }
        return set_output(ctx, std::move(out));
    }
};

// Unsqueeze: inserts size-1 dims at `axes` (attribute before opset 13, input from 13), which
// index the output rank.
class UnsqueezeKernel final : public ReshapeLikeKernel {
public:
    Status prepare(PrepareContext& ctx) override {
        const Node& node = ctx.node;
        const bool axes_as_input = ctx.opset >= 13;
        std::vector<int64_t> axes;
        if (axes_as_input) {
            LOWBIT_TRY(check_known_attrs(node, {}));
            LOWBIT_TRY(check_input_count(ctx, 2, 2));
            LOWBIT_ASSIGN(axes, plan_time_ints(ctx, 1, "axes"));
        } else {
            LOWBIT_TRY(check_known_attrs(node, {"axes"}));
            LOWBIT_TRY(check_input_count(ctx, 1, 1));
            if (!node.has_attr("axes")) {
                return invalid("{}: attribute 'axes' is required", node.describe());
            }
            LOWBIT_ASSIGN(axes, ints_attr(node, "axes"));
        }
        const Shape& in = ctx.inputs[0].shape;
        const auto out_rank = static_cast<int64_t>(in.size() + axes.size());
        LOWBIT_ASSIGN(axes, normalize_axis_list(node, "axes", axes, out_rank));
        Shape out;
        size_t next = 0;
        for (int64_t i = 0; i < out_rank; ++i) {
            if (std::find(axes.begin(), axes.end(), i) != axes.end()) {
                out.push_back(1);
            } else {
                out.push_back(in[next++]);
            }
        }
        return set_output(ctx, std::move(out));
    }
};

// ConstantOfShape (opset 9-19): shape (int64 1-D, known at plan time) -> tensor of that shape
// filled with `value` (a one-element tensor; default float32 0). An empty shape gives a scalar.
class ConstantOfShapeKernel final : public PlanTimeValueKernel {
public:
    Status prepare(PrepareContext& ctx) override {
        const Node& node = ctx.node;
        LOWBIT_TRY(check_known_attrs(node, {"value"}));
        LOWBIT_TRY(check_input_count(ctx, 1, 1));
        LOWBIT_ASSIGN(std::vector<int64_t> dims, plan_time_ints(ctx, 0, "input"));
        for (int64_t d : dims) {
            if (d < 0) {
                return invalid("{}: shape {} has a negative dim", node.describe(), shape_str(dims));
            }
        }
        Tensor fill = Tensor::from_vector<float>(DType::Float32, {1}, {0.0f});
        if (const Attr* a = node.attr("value")) {
            LOWBIT_TRY(check_attr_kind(node, *a, "value", Attr::Kind::Tensor));
            LOWBIT_TRY(require_movable(node, "value", a->t.dtype()));
            if (a->t.numel() != 1 || a->t.empty()) {
                return invalid("{}: attribute 'value' must hold exactly one element, has shape {}",
                               node.describe(), shape_str(a->t.shape()));
            }
            fill = a->t;
        }
        Tensor out(fill.dtype(), dims);
        const size_t elem = dtype_size(fill.dtype());
        auto* dst = static_cast<char*>(out.raw());
        for (int64_t i = 0; i < out.numel(); ++i) {
            std::memcpy(dst + static_cast<size_t>(i) * elem, fill.raw(), elem);
        }
        return set_value(ctx, std::move(out));
    }
};

// Range (opset 11-19): scalars start, limit, delta of one dtype (float32, float64, int16, int32,
// int64), known at plan time -> 1-D [max(ceil((limit - start) / delta), 0)]. Element i is
// start + delta added i times in the input dtype, as the spec's Loop body (and ORT) compute it.
class RangeKernel final : public PlanTimeValueKernel {
public:
    Status prepare(PrepareContext& ctx) override {
        const Node& node = ctx.node;
        LOWBIT_TRY(check_known_attrs(node, {}));
        LOWBIT_TRY(check_input_count(ctx, 3, 3));
        const DType dt = ctx.inputs[0].dtype;
        LOWBIT_TRY(require_dtype(
            node, "start", dt,
            {DType::Float32, DType::Float64, DType::Int16, DType::Int32, DType::Int64}));
        static constexpr const char* kNames[] = {"start", "limit", "delta"};
        for (size_t i = 0; i < 3; ++i) {
            const TensorInfo& in = ctx.inputs[i];
            if (in.dtype != dt) {
                return invalid("{}: input '{}' has dtype {}, expected {} like 'start'",
                               node.describe(), kNames[i], dtype_name(in.dtype), dtype_name(dt));
            }
            if (shape_numel(in.shape) != 1) {
                return invalid("{}: input '{}' must be a scalar, has shape {}", node.describe(),
                               kNames[i], shape_str(in.shape));
            }
            if (!in.value) {
                return unsupported("{}: input '{}' must be known at plan time", node.describe(),
                                   kNames[i]);
            }
        }
        switch (dt) {
            case DType::Float32: return make<float>(ctx);
            case DType::Float64: return make<double>(ctx);
            case DType::Int16: return make<int16_t>(ctx);
            case DType::Int32: return make<int32_t>(ctx);
            default: return make<int64_t>(ctx);
        }
    }

private:
    template <typename T>
    Status make(PrepareContext& ctx) {
        const T start = ctx.inputs[0].value->data<T>()[0];
        const T limit = ctx.inputs[1].value->data<T>()[0];
        const T delta = ctx.inputs[2].value->data<T>()[0];
        if (delta == T(0)) return invalid("{}: delta must not be 0", ctx.node.describe());
        int64_t n = 0;
        if constexpr (std::is_floating_point_v<T>) {
            const double count = std::ceil(static_cast<double>(T(limit - start)) / delta);
            if (!std::isfinite(count)) {
                return invalid("{}: element count is not finite", ctx.node.describe());
            }
            n = std::max<int64_t>(0, static_cast<int64_t>(count));
        } else {
            const auto d = static_cast<int64_t>(limit) - static_cast<int64_t>(start);
            const auto step = static_cast<int64_t>(delta);
            if ((step > 0 && d > 0) || (step < 0 && d < 0)) {
                n = (d + step + (step > 0 ? -1 : 1)) / step;
            }
        }
        Tensor out(ctx.inputs[0].dtype, {n});
        T* p = out.data<T>();
        T v = start;
        for (int64_t i = 0; i < n; ++i) {
            p[i] = v;
            v = static_cast<T>(v + delta);
        }
        return set_value(ctx, std::move(out));
    }
};

}  // namespace
}  // namespace ref

void register_tensor_kernels(KernelRegistry& r) {
    using namespace ref;
    register_kernel<ConstantKernel>(r, "Constant");
    register_kernel<IdentityKernel>(r, "Identity");
    register_kernel<ShapeKernel>(r, "Shape");
    register_kernel<SizeKernel>(r, "Size");
    register_kernel<ReshapeKernel>(r, "Reshape");
    register_kernel<FlattenKernel>(r, "Flatten");
    register_kernel<SqueezeKernel>(r, "Squeeze");
    register_kernel<UnsqueezeKernel>(r, "Unsqueeze");
    register_kernel<ConstantOfShapeKernel>(r, "ConstantOfShape");
    register_kernel<RangeKernel>(r, "Range");
    register_tensor_copy_kernels(r);
    register_tensor_index_kernels(r);
}

}  // namespace lowbit
