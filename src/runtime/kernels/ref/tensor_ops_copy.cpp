// Reference data-movement kernels: Transpose, Concat, Split, Slice, Expand, Tile, Pad.
// All copy bytes, so they take every fixed-size dtype. Parameter inputs (split sizes, slice
// bounds, expand shape, repeats, pads) must be known at plan time.
#include <cmath>
#include <cstring>
#include <limits>

#include "runtime/kernels/ref/op_util.h"
#include "runtime/registry.h"

namespace lowbit::ref {
namespace {

// Transpose (opset 1-19): data [d0..dn) -> [d(perm[0])..d(perm[n-1])]; perm defaults to the
// reversed axes.
class TransposeKernel final : public Kernel {
public:
    Status prepare(PrepareContext& ctx) override {
        const Node& node = ctx.node;
        LOWBIT_TRY(check_known_attrs(node, {"perm"}));
        LOWBIT_TRY(check_input_count(ctx, 1, 1));
        LOWBIT_TRY(require_movable(node, "data", ctx.inputs[0].dtype));
        const Shape& in = ctx.inputs[0].shape;
        const auto rank = static_cast<int64_t>(in.size());
        std::vector<int64_t> perm;
        if (node.has_attr("perm")) {
            LOWBIT_ASSIGN(perm, ints_attr(node, "perm"));
            if (static_cast<int64_t>(perm.size()) != rank) {
                return invalid("{}: perm {} does not match input rank {}", node.describe(),
                               shape_str(perm), rank);
            }
            LOWBIT_ASSIGN(perm, normalize_axis_list(node, "perm", perm, rank));
        } else {
            for (int64_t i = rank - 1; i >= 0; --i) perm.push_back(i);
        }
        perm_ = perm;
        Shape out;
        for (int64_t p : perm) out.push_back(in[static_cast<size_t>(p)]);
        ctx.outputs[0].dtype = ctx.inputs[0].dtype;
        ctx.outputs[0].shape = std::move(out);
        return Status::ok();
    }

    Status run(RunContext& ctx) override {
        const Tensor& x = ctx.inputs[0];
        Tensor& y = ctx.outputs[0];
        const std::vector<int64_t> in_strides = contiguous_strides(x.shape());
        std::vector<int64_t> src_strides;
        for (int64_t p : perm_) src_strides.push_back(in_strides[static_cast<size_t>(p)]);
        strided_copy(x.raw(), 0, src_strides, y.raw(), y.shape(), dtype_size(x.dtype()));
        return Status::ok();
    }

private:
    std::vector<int64_t> perm_;
};

// Concat (opset 4-19): inputs of equal rank and dtype, equal dims except `axis` -> joined along
// `axis` (required; negative allowed from opset 11). Empty inputs contribute nothing.
class ConcatKernel final : public Kernel {
public:
    Status prepare(PrepareContext& ctx) override {
        const Node& node = ctx.node;
        LOWBIT_TRY(check_known_attrs(node, {"axis"}));
        if (ctx.num_inputs() == 0) return invalid("{}: needs at least one input", node.describe());
        if (!node.has_attr("axis")) {
            return invalid("{}: attribute 'axis' is required", node.describe());
        }
        const TensorInfo& first = ctx.inputs[0];
        LOWBIT_TRY(require_movable(node, "inputs", first.dtype));
        const auto rank = static_cast<int64_t>(first.shape.size());
        LOWBIT_ASSIGN(int64_t axis_attr, int_attr(node, "axis", 0));
        LOWBIT_ASSIGN(int64_t axis, normalize_axis(axis_attr, rank, node, "axis"));
        Shape out = first.shape;
        out[static_cast<size_t>(axis)] = 0;
        for (size_t i = 0; i < ctx.num_inputs(); ++i) {
            const TensorInfo& in = ctx.inputs[i];
            if (!in.present()) return invalid("{}: input {} is empty", node.describe(), i);
            if (in.dtype != first.dtype) {
                return invalid("{}: input {} has dtype {}, input 0 has {}", node.describe(), i,
                               dtype_name(in.dtype), dtype_name(first.dtype));
            }
            bool ok = in.shape.size() == first.shape.size();
            for (size_t d = 0; ok && d < in.shape.size(); ++d) {
                ok = static_cast<int64_t>(d) == axis || in.shape[d] == first.shape[d];
            }
            if (!ok) {
                return invalid("{}: input {} has shape {}, incompatible with input 0 {} on axis {}",
                               node.describe(), i, shape_str(in.shape), shape_str(first.shape),
                               axis);
            }
            out[static_cast<size_t>(axis)] += in.shape[static_cast<size_t>(axis)];
        }
        axis_ = static_cast<size_t>(axis);
        ctx.outputs[0].dtype = first.dtype;
        ctx.outputs[0].shape = std::move(out);
        return Status::ok();
    }

    Status run(RunContext& ctx) override {
        Tensor& y = ctx.outputs[0];
        const size_t elem = dtype_size(y.dtype());
        const int64_t outer = dims_product(y.shape(), 0, axis_);
        const int64_t inner = dims_product(y.shape(), axis_ + 1, y.rank());
        const int64_t out_row = y.dim(axis_) * inner * static_cast<int64_t>(elem);
        auto* dst = static_cast<char*>(y.raw());
        int64_t col = 0;  // byte offset of this input's block inside an output row
        for (const Tensor& x : ctx.inputs) {
            const int64_t row = x.dim(axis_) * inner * static_cast<int64_t>(elem);
            const auto* src = static_cast<const char*>(x.raw());
            for (int64_t o = 0; o < outer && row > 0; ++o) {
                std::memcpy(dst + o * out_row + col, src + o * row, static_cast<size_t>(row));
            }
            col += row;
        }
        return Status::ok();
    }

private:
    size_t axis_ = 0;
};

// Split (opset 2-19): input -> N outputs along `axis` (default 0). Sizes come from the `split`
// attribute (opset < 13) or input (opset >= 13); without them the axis is split equally: into
// N parts that must divide it, or (opset 18 `num_outputs`) into ceil(dim / N)-sized parts with a
// smaller last one.
class SplitKernel final : public Kernel {
public:
    Status prepare(PrepareContext& ctx) override {
        const Node& node = ctx.node;
        const bool split_as_input = ctx.opset >= 13;
        if (split_as_input) {
            LOWBIT_TRY(check_known_attrs(node, {"axis", "num_outputs"}));
        } else {
            LOWBIT_TRY(check_known_attrs(node, {"axis", "split"}));
        }
        LOWBIT_TRY(check_input_count(ctx, 1, split_as_input ? 2 : 1));
        const TensorInfo& in = ctx.inputs[0];
        LOWBIT_TRY(require_movable(node, "input", in.dtype));
        const auto rank = static_cast<int64_t>(in.shape.size());
        LOWBIT_ASSIGN(int64_t axis_attr, int_attr(node, "axis", 0));
        LOWBIT_ASSIGN(int64_t axis, normalize_axis(axis_attr, rank, node, "axis"));
        const int64_t dim = in.shape[static_cast<size_t>(axis)];
        const auto n_out = static_cast<int64_t>(ctx.outputs.size());
        std::vector<int64_t> sizes;
        if (split_as_input && ctx.has_input(1)) {
            if (node.has_attr("num_outputs")) {
                return invalid("{}: 'split' input and 'num_outputs' attribute are exclusive",
                               node.describe());
            }
            LOWBIT_ASSIGN(sizes, plan_time_ints(ctx, 1, "split"));
        } else if (!split_as_input && node.has_attr("split")) {
            LOWBIT_ASSIGN(sizes, ints_attr(node, "split"));
        } else if (node.has_attr("num_outputs")) {
            LOWBIT_ASSIGN(int64_t n, int_attr(node, "num_outputs", n_out));
            if (n != n_out || n < 1) {
                return invalid("{}: num_outputs {} does not match the {} outputs", node.describe(),
                               n, n_out);
            }
            const int64_t chunk = (dim + n - 1) / n;
            for (int64_t i = 0; i < n; ++i) {
                sizes.push_back(std::max<int64_t>(0, std::min(chunk, dim - i * chunk)));
            }
        } else {
            if (n_out < 1 || dim % n_out != 0) {
                return invalid("{}: axis {} of size {} cannot be split equally into {} outputs",
                               node.describe(), axis, dim, n_out);
            }
            sizes.assign(static_cast<size_t>(n_out), dim / n_out);
        }
        if (static_cast<int64_t>(sizes.size()) != n_out) {
            return invalid("{}: split {} has {} entries for {} outputs", node.describe(),
                           shape_str(sizes), sizes.size(), n_out);
        }
        int64_t sum = 0;
        for (int64_t s : sizes) {
            if (s < 0) {
                return invalid("{}: split {} has a negative size", node.describe(),
                               shape_str(sizes));
            }
            sum += s;
        }
        if (sum != dim) {
            return invalid("{}: split {} sums to {}, but axis {} of {} has size {}",
                           node.describe(), shape_str(sizes), sum, axis, shape_str(in.shape), dim);
        }
        axis_ = static_cast<size_t>(axis);
        sizes_ = sizes;
        for (size_t i = 0; i < sizes.size(); ++i) {
            ctx.outputs[i].dtype = in.dtype;
            ctx.outputs[i].shape = in.shape;
            ctx.outputs[i].shape[axis_] = sizes[i];
        }
        // Every dim before the axis 1 (the YOLO heads' [1, 64 + classes, anchors]): each output
        // is one run of the input.
        runs_.clear();
        if (dims_product(in.shape, 0, axis_) == 1) {
            const int64_t inner = dims_product(in.shape, axis_ + 1, in.shape.size());
            int64_t at = 0;
            for (int64_t s : sizes) {
                runs_.push_back(at);
                at += s * inner;
            }
        }
        return Status::ok();
    }

    std::vector<int64_t> output_runs_of_input() const override { return runs_; }

    Status run(RunContext& ctx) override {
        const Tensor& x = ctx.inputs[0];
        const size_t elem = dtype_size(x.dtype());
        const int64_t outer = dims_product(x.shape(), 0, axis_);
        const int64_t inner = dims_product(x.shape(), axis_ + 1, x.rank());
        const int64_t in_row = x.dim(axis_) * inner * static_cast<int64_t>(elem);
        const auto* src = static_cast<const char*>(x.raw());
        int64_t col = 0;  // byte offset of this output's block inside an input row
        for (size_t i = 0; i < ctx.outputs.size(); ++i) {
            const int64_t row = sizes_[i] * inner * static_cast<int64_t>(elem);
            // An output the graph does not use may be left unallocated; it still advances col.
            if (!ctx.outputs[i].empty() && row > 0) {
                auto* dst = static_cast<char*>(ctx.outputs[i].raw());
                for (int64_t o = 0; o < outer; ++o) {
                    std::memcpy(dst + o * row, src + o * in_row + col, static_cast<size_t>(row));
                }
            }
            col += row;
        }
        return Status::ok();
    }

private:
    size_t axis_ = 0;
    std::vector<int64_t> sizes_;
    std::vector<int64_t> runs_;  // output_runs_of_input()
};

// Slice (opset 1-19): data, starts, ends, axes?, steps? -> strided sub-tensor. Opset < 10 takes
// starts/ends/axes as attributes. Per axis with size d (spec, Slice-13):
//   negative start/end get d added; then for step > 0 start, end are clamped to [0, d], for
//   step < 0 start to [0, d-1] and end to [-1, d-1]; count = max(0, ceil((end-start)/step)).
class SliceKernel final : public Kernel {
public:
    Status prepare(PrepareContext& ctx) override {
        const Node& node = ctx.node;
        const TensorInfo& in = ctx.inputs.empty() ? TensorInfo{} : ctx.inputs[0];
        std::vector<int64_t> starts, ends, axes, steps;
        if (ctx.opset >= 10) {
            LOWBIT_TRY(check_known_attrs(node, {}));
            LOWBIT_TRY(check_input_count(ctx, 3, 5));
            LOWBIT_ASSIGN(starts, plan_time_ints(ctx, 1, "starts"));
            LOWBIT_ASSIGN(ends, plan_time_ints(ctx, 2, "ends"));
            if (ctx.has_input(3)) {
                LOWBIT_ASSIGN(axes, plan_time_ints(ctx, 3, "axes"));
            }
            if (ctx.has_input(4)) {
                LOWBIT_ASSIGN(steps, plan_time_ints(ctx, 4, "steps"));
            }
        } else {
            LOWBIT_TRY(check_known_attrs(node, {"starts", "ends", "axes"}));
            LOWBIT_TRY(check_input_count(ctx, 1, 1));
            LOWBIT_ASSIGN(starts, ints_attr(node, "starts"));
            LOWBIT_ASSIGN(ends, ints_attr(node, "ends"));
            LOWBIT_ASSIGN(axes, ints_attr(node, "axes"));
        }
        LOWBIT_TRY(require_movable(node, "data", in.dtype));
        const Shape& shape = in.shape;
        const auto rank = static_cast<int64_t>(shape.size());
        if (ends.size() != starts.size()) {
            return invalid("{}: starts {} and ends {} differ in length", node.describe(),
                           shape_str(starts), shape_str(ends));
        }
        if (axes.empty()) {
            for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
        }
        if (steps.empty()) steps.assign(starts.size(), 1);
        if (axes.size() != starts.size() || steps.size() != starts.size()) {
            return invalid("{}: starts, ends, axes and steps must have equal lengths",
                           node.describe());
        }
        LOWBIT_ASSIGN(axes, normalize_axis_list(node, "axes", axes, rank));
        const std::vector<int64_t> in_strides = contiguous_strides(shape);
        offset_ = 0;
        src_strides_ = in_strides;
        Shape out = shape;
        for (size_t i = 0; i < axes.size(); ++i) {
            const auto a = static_cast<size_t>(axes[i]);
            const int64_t d = shape[a];
            if (steps[i] == 0) return invalid("{}: steps must not be 0", node.describe());
            // A step of magnitude > d selects at most one element, like a step of d + 1; the
            // clamp keeps step * stride from overflowing for INT64_MAX-style steps.
            const int64_t step = std::clamp<int64_t>(steps[i], -(d + 1), d + 1);
            int64_t start = starts[i];
            int64_t end = ends[i];
            if (start < 0) start += d;
            if (end < 0) end += d;
            int64_t count = 0;
            if (d == 0) {
                count = 0;
            } else if (step > 0) {
                start = std::clamp<int64_t>(start, 0, d);
                end = std::clamp<int64_t>(end, 0, d);
                if (end > start) count = (end - start - 1) / step + 1;
            } else {
                start = std::clamp<int64_t>(start, 0, d - 1);
                end = std::clamp<int64_t>(end, -1, d - 1);
                if (start > end) count = (start - end - 1) / (-step) + 1;
            }
            out[a] = count;
            if (count > 0) offset_ += start * in_strides[a];
            src_strides_[a] = step * in_strides[a];
        }
        // The copied elements are consecutive when every output dim longer than 1 steps through
        // the input as it does through the output.
        const std::vector<int64_t> out_strides = contiguous_strides(out);
        contiguous_ = shape_numel(out) > 0;
        for (size_t a = 0; a < out.size(); ++a) {
            contiguous_ = contiguous_ && (out[a] == 1 || src_strides_[a] == out_strides[a]);
        }
        ctx.outputs[0].dtype = in.dtype;
        ctx.outputs[0].shape = std::move(out);
        return Status::ok();
    }

    std::vector<int64_t> output_runs_of_input() const override {
        return contiguous_ ? std::vector<int64_t>{offset_} : std::vector<int64_t>{};
    }

    Status run(RunContext& ctx) override {
        const Tensor& x = ctx.inputs[0];
        Tensor& y = ctx.outputs[0];
        strided_copy(x.raw(), offset_, src_strides_, y.raw(), y.shape(), dtype_size(x.dtype()));
        return Status::ok();
    }

private:
    int64_t offset_ = 0;
    std::vector<int64_t> src_strides_;
    bool contiguous_ = false;
};

// Expand (opset 8-19): input, shape (int64, known at plan time) -> broadcast of input and
// shape (bidirectional NumPy rules: a dim of 1 on either side takes the other's size).
class ExpandKernel final : public Kernel {
public:
    Status prepare(PrepareContext& ctx) override {
        const Node& node = ctx.node;
        LOWBIT_TRY(check_known_attrs(node, {}));
        LOWBIT_TRY(check_input_count(ctx, 2, 2));
        LOWBIT_TRY(require_movable(node, "input", ctx.inputs[0].dtype));
        LOWBIT_ASSIGN(std::vector<int64_t> target, plan_time_ints(ctx, 1, "shape"));
        const Shape& in = ctx.inputs[0].shape;
        const size_t rank = std::max(in.size(), target.size());
        Shape out(rank);
        const std::vector<int64_t> in_strides = contiguous_strides(in);
        src_strides_.assign(rank, 0);
        for (size_t i = 0; i < rank; ++i) {
            const size_t off_in = rank - in.size();
            const size_t off_t = rank - target.size();
            const int64_t a = i >= off_in ? in[i - off_in] : 1;
            const int64_t b = i >= off_t ? target[i - off_t] : 1;
            if (a != b && a != 1 && b != 1) {
                return invalid("{}: input {} cannot be expanded to shape {}", node.describe(),
                               shape_str(in), shape_str(target));
            }
            out[i] = a == 1 ? b : a;
            if (i >= off_in && a != 1) src_strides_[i] = in_strides[i - off_in];
        }
        ctx.outputs[0].dtype = ctx.inputs[0].dtype;
        ctx.outputs[0].shape = std::move(out);
        return Status::ok();
    }

    Status run(RunContext& ctx) override {
        const Tensor& x = ctx.inputs[0];
        Tensor& y = ctx.outputs[0];
        strided_copy(x.raw(), 0, src_strides_, y.raw(), y.shape(), dtype_size(x.dtype()));
        return Status::ok();
    }

private:
    std::vector<int64_t> src_strides_;
};

// Tile (opset 6-19): input [d0..dn), repeats (int64 [n], known at plan time) ->
// [d0*r0..dn*rn); output index o reads input index o mod d on every axis.
class TileKernel final : public Kernel {
public:
    Status prepare(PrepareContext& ctx) override {
        const Node& node = ctx.node;
        LOWBIT_TRY(check_known_attrs(node, {}));
        LOWBIT_TRY(check_input_count(ctx, 2, 2));
        LOWBIT_TRY(require_movable(node, "input", ctx.inputs[0].dtype));
        LOWBIT_ASSIGN(std::vector<int64_t> repeats, plan_time_ints(ctx, 1, "repeats"));
        const Shape& in = ctx.inputs[0].shape;
        if (repeats.size() != in.size()) {
            return invalid("{}: repeats {} must have one entry per input dim of {}",
                           node.describe(), shape_str(repeats), shape_str(in));
        }
        Shape out(in.size());
        for (size_t i = 0; i < in.size(); ++i) {
            if (repeats[i] < 0) {
                return invalid("{}: repeats {} has a negative entry", node.describe(),
                               shape_str(repeats));
            }
            out[i] = in[i] * repeats[i];
        }
        ctx.outputs[0].dtype = ctx.inputs[0].dtype;
        ctx.outputs[0].shape = std::move(out);
        return Status::ok();
    }

    Status run(RunContext& ctx) override {
        const Tensor& x = ctx.inputs[0];
        Tensor& y = ctx.outputs[0];
        const int64_t total = y.numel();
        if (total == 0) return Status::ok();
        const auto elem = static_cast<int64_t>(dtype_size(x.dtype()));
        const size_t rank = y.rank();
        if (rank == 0) {
            std::memcpy(y.raw(), x.raw(), static_cast<size_t>(elem));
            return Status::ok();
        }
        const Shape& in = x.shape();
        const std::vector<int64_t> in_strides = contiguous_strides(in);
        const int64_t in_row = in[rank - 1];
        const int64_t out_row = y.dim(rank - 1);
        const auto* src = static_cast<const char*>(x.raw());
        auto* dst = static_cast<char*>(y.raw());
        std::vector<int64_t> idx(rank, 0);
        for (int64_t row = 0; row < total / out_row; ++row) {
            int64_t src_off = 0;
            for (size_t k = 0; k + 1 < rank; ++k) src_off += (idx[k] % in[k]) * in_strides[k];
            char* out = dst + row * out_row * elem;
            for (int64_t r = 0; r < out_row / in_row; ++r) {
                std::memcpy(out + r * in_row * elem, src + src_off * elem,
                            static_cast<size_t>(in_row * elem));
            }
            for (size_t k = rank - 1; k-- > 0;) {
                if (++idx[k] < y.dim(k)) break;
                idx[k] = 0;
            }
        }
        return Status::ok();
    }
};

// Pad (opset 2-19): data, pads (int64 [2 * naxes]: all begins then all ends, known at plan time),
// constant_value? (scalar of data's dtype), axes? (opset 18) -> padded. Opset < 11 takes `pads`
// and float `value` as attributes. Modes: constant (default), reflect (mirror without repeating
// the edge), edge (repeat the edge), wrap (opset 19, periodic). Negative pads crop.
class PadKernel final : public Kernel {
public:
    Status prepare(PrepareContext& ctx) override {
        const Node& node = ctx.node;
        const TensorInfo& in = ctx.inputs.empty() ? TensorInfo{} : ctx.inputs[0];
        LOWBIT_TRY(require_movable(node, "data", in.dtype));
        LOWBIT_ASSIGN(std::string mode, string_attr(node, "mode", "constant"));
        if (mode == "constant") {
            mode_ = Mode::Constant;
        } else if (mode == "reflect") {
            mode_ = Mode::Reflect;
        } else if (mode == "edge") {
            mode_ = Mode::Edge;
        } else if (mode == "wrap" && ctx.opset >= 19) {
            mode_ = Mode::Wrap;
        } else {
            return unsupported("{}: attribute 'mode' value '{}' is not supported", node.describe(),
                               mode);
        }
        const auto rank = static_cast<int64_t>(in.shape.size());
        std::vector<int64_t> pads;
        std::vector<int64_t> axes;
        fill_ = Tensor(in.dtype, {});
        if (ctx.opset >= 11) {
            LOWBIT_TRY(check_known_attrs(node, {"mode"}));
            LOWBIT_TRY(check_input_count(ctx, 2, ctx.opset >= 18 ? 4 : 3));
            LOWBIT_ASSIGN(pads, plan_time_ints(ctx, 1, "pads"));
            if (ctx.has_input(2)) {
                const TensorInfo& cv = ctx.inputs[2];
                if (cv.dtype != in.dtype || shape_numel(cv.shape) != 1) {
                    return invalid("{}: constant_value must be one {} element, got {} {}",
                                   node.describe(), dtype_name(in.dtype), dtype_name(cv.dtype),
                                   shape_str(cv.shape));
                }
                if (!cv.value) {
                    return unsupported("{}: input 'constant_value' must be known at plan time",
                                       node.describe());
                }
                std::memcpy(fill_.raw(), cv.value->raw(), dtype_size(in.dtype));
            }
            if (ctx.has_input(3)) {
                LOWBIT_ASSIGN(axes, plan_time_ints(ctx, 3, "axes"));
            }
        } else {
            LOWBIT_TRY(check_known_attrs(node, {"mode", "pads", "value"}));
            LOWBIT_TRY(check_input_count(ctx, 1, 1));
            LOWBIT_ASSIGN(pads, ints_attr(node, "pads"));
            LOWBIT_ASSIGN(float value, float_attr(node, "value", 0.0f));
            if (in.dtype != DType::Float32 && value != 0.0f) {
                return unsupported("{}: attribute 'value' is only supported for float32 data",
                                   node.describe());
            }
            if (in.dtype == DType::Float32) fill_.data<float>()[0] = value;
        }
        if (axes.empty()) {
            for (int64_t i = 0; i < rank; ++i) axes.push_back(i);
        } else {
            LOWBIT_ASSIGN(axes, normalize_axis_list(node, "axes", axes, rank));
        }
        if (pads.size() != 2 * axes.size()) {
            return invalid("{}: pads {} must have 2 x {} entries", node.describe(), shape_str(pads),
                           axes.size());
        }
        // Negative pads crop first; the padding then applies to the cropped view (as the ONNX
        // reference does), which matters for wrap/reflect when one side crops and the other pads.
        begin_.assign(static_cast<size_t>(rank), 0);
        crop_.assign(static_cast<size_t>(rank), 0);
        view_ = in.shape;
        Shape out = in.shape;
        for (size_t i = 0; i < axes.size(); ++i) {
            const auto a = static_cast<size_t>(axes[i]);
            const int64_t b = pads[i];
            const int64_t e = pads[i + axes.size()];
            begin_[a] = std::max<int64_t>(b, 0);
            crop_[a] = std::max<int64_t>(-b, 0);
            view_[a] = in.shape[a] - crop_[a] - std::max<int64_t>(-e, 0);
            out[a] = in.shape[a] + b + e;
            if (out[a] < 0) {
                return invalid("{}: pads {} crop axis {} of {} below zero", node.describe(),
                               shape_str(pads), a, shape_str(in.shape));
            }
            if (mode_ != Mode::Constant && view_[a] <= 0 && out[a] > 0) {
                return invalid("{}: mode '{}' cannot pad the empty axis {} of {}", node.describe(),
                               mode, a, shape_str(in.shape));
            }
        }
        ctx.outputs[0].dtype = in.dtype;
        ctx.outputs[0].shape = std::move(out);
        return Status::ok();
    }

    Status run(RunContext& ctx) override {
        const Tensor& x = ctx.inputs[0];
        Tensor& y = ctx.outputs[0];
        const int64_t total = y.numel();
        if (total == 0) return Status::ok();
        const auto elem = static_cast<int64_t>(dtype_size(x.dtype()));
        const size_t rank = y.rank();
        const auto* src = static_cast<const char*>(x.raw());
        auto* dst = static_cast<char*>(y.raw());
        if (rank == 0) {
            std::memcpy(dst, src, static_cast<size_t>(elem));
            return Status::ok();
        }
        const Shape& in = x.shape();
        const std::vector<int64_t> in_strides = contiguous_strides(in);
        const int64_t row_len = y.dim(rank - 1);
        std::vector<int64_t> idx(rank, 0);
        for (int64_t row = 0; row < total / row_len; ++row) {
            char* out = dst + row * row_len * elem;
            // Map the outer coordinates; a row outside the input (constant mode) is all fill.
            int64_t src_off = 0;
            bool inside = true;
            for (size_t k = 0; k + 1 < rank; ++k) {
                const int64_t c = source_index(idx[k] - begin_[k], view_[k]);
                if (c < 0) {
                    inside = false;
                    break;
                }
                src_off += (crop_[k] + c) * in_strides[k];
            }
            const size_t last = rank - 1;
            for (int64_t j = 0; j < row_len; ++j) {
                const int64_t c = inside ? source_index(j - begin_[last], view_[last]) : -1;
                const char* from = c < 0 ? static_cast<const char*>(fill_.raw())
                                         : src + (src_off + crop_[last] + c) * elem;
                std::memcpy(out + j * elem, from, static_cast<size_t>(elem));
            }
            for (size_t k = rank - 1; k-- > 0;) {
                if (++idx[k] < y.dim(k)) break;
                idx[k] = 0;
            }
        }
        return Status::ok();
    }

private:
    enum class Mode { Constant, Reflect, Edge, Wrap };

    // View coordinate for coordinate i (relative to the view's start) on an axis of size d,
    // or -1 for "use the constant".
    int64_t source_index(int64_t i, int64_t d) const {
        if (i >= 0 && i < d) return i;
        switch (mode_) {
            case Mode::Constant: return -1;
            case Mode::Edge: return i < 0 ? 0 : d - 1;
            case Mode::Wrap: return ((i % d) + d) % d;
            case Mode::Reflect: {
                if (d == 1) return 0;
                // Mirror about the first and last elements: period 2 * (d - 1), as numpy.pad.
                const int64_t period = 2 * (d - 1);
                int64_t m = ((i % period) + period) % period;
                return m < d ? m : period - m;
            }
        }
        return -1;
    }

    Mode mode_ = Mode::Constant;
    std::vector<int64_t> begin_;  // padding before the view, per axis (>= 0)
    std::vector<int64_t> crop_;   // elements cropped from the input's start, per axis
    Shape view_;                  // the cropped view's shape
    Tensor fill_;
};

}  // namespace

void register_tensor_copy_kernels(KernelRegistry& r) {
    register_kernel<TransposeKernel>(r, "Transpose");
    register_kernel<ConcatKernel>(r, "Concat");
    register_kernel<SplitKernel>(r, "Split");
    register_kernel<SliceKernel>(r, "Slice");
    register_kernel<ExpandKernel>(r, "Expand");
    register_kernel<TileKernel>(r, "Tile");
    register_kernel<PadKernel>(r, "Pad");
}

}  // namespace lowbit::ref
