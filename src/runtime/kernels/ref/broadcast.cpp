#include "runtime/kernels/ref/broadcast.h"

#include <fmt/format.h>

#include <algorithm>

namespace lowbit::ref {

Result<Shape> broadcast_shapes(std::span<const Shape> shapes) {
    size_t rank = 0;
    for (const Shape& s : shapes) rank = std::max(rank, s.size());
    Shape out(rank, 1);
    // Right-aligned: dim i of a shape of rank r lands on output dim i + rank - r.
    for (const Shape& s : shapes) {
        const size_t shift = rank - s.size();
        for (size_t i = 0; i < s.size(); ++i) {
            int64_t& o = out[i + shift];
            const int64_t d = s[i];
            if (d == o || d == 1) continue;
            if (o == 1) {
                o = d;
                continue;
            }
            std::vector<std::string> all;
            for (const Shape& t : shapes) all.push_back(shape_str(t));
            return invalid("shapes {} are not broadcastable (dim {} from the right: {} vs {})",
                           fmt::join(all, " and "), rank - (i + shift), o, d);
        }
    }
    return out;
}

Result<Shape> broadcast_shapes(const Shape& a, const Shape& b) {
    const Shape both[2] = {a, b};
    return broadcast_shapes(std::span<const Shape>(both, 2));
}

bool broadcastable_to(const Shape& from, const Shape& to) {
    if (from.size() > to.size()) return false;
    const size_t shift = to.size() - from.size();
    for (size_t i = 0; i < from.size(); ++i) {
        if (from[i] != 1 && from[i] != to[i + shift]) return false;
    }
    return true;
}

std::vector<int64_t> contiguous_strides(const Shape& s) {
    std::vector<int64_t> st(s.size(), 1);
    for (size_t i = s.size(); i-- > 1;) st[i - 1] = st[i] * s[i];
    return st;
}

std::vector<int64_t> broadcast_strides(const Shape& in, const Shape& out) {
    std::vector<int64_t> st(out.size(), 0);
    const std::vector<int64_t> own = contiguous_strides(in);
    const size_t shift = out.size() - in.size();
    for (size_t i = 0; i < in.size(); ++i) {
        st[i + shift] = (in[i] == 1 && out[i + shift] != 1) ? 0 : own[i];
    }
    return st;
}

Result<int64_t> normalize_axis(int64_t axis, int64_t rank, const Node& node, const char* what) {
    if (axis < -rank || axis >= rank) {
        return invalid("{}: {} {} is out of range for an input of rank {}", node.describe(), what,
                       axis, rank);
    }
    return axis < 0 ? axis + rank : axis;
}

Status check_input_count(const PrepareContext& ctx, size_t min_inputs, size_t max_inputs) {
    const size_t n = ctx.num_inputs();
    if (n < min_inputs || n > max_inputs) {
        if (min_inputs == max_inputs) {
            return invalid("{}: expects {} inputs, got {}", ctx.node.describe(), min_inputs, n);
        }
        return invalid("{}: expects {} to {} inputs, got {}", ctx.node.describe(), min_inputs,
                       max_inputs, n);
    }
    for (size_t i = 0; i < min_inputs; ++i) {
        if (!ctx.has_input(i)) {
            return invalid("{}: required input {} is missing", ctx.node.describe(), i);
        }
    }
    return Status::ok();
}

Status dtype_error(const Node& node, size_t input, DType got, const std::string& supported) {
    return unsupported("{}: input {} has dtype {}; {} supports {}", node.describe(), input,
                       dtype_name(got), node.op_type, supported);
}

namespace {

Status attr_kind_error(const Node& node, const std::string& name, const Attr& a, Attr::Kind want) {
    return invalid("{}: attribute '{}' is {}, expected {}", node.describe(), name,
                   attr_kind_name(a.kind), attr_kind_name(want));
}

}  // namespace

Result<float> float_attr(const Node& node, const std::string& name, float def) {
    const Attr* a = node.attr(name);
    if (a == nullptr) return def;
    if (a->kind != Attr::Kind::Float) return attr_kind_error(node, name, *a, Attr::Kind::Float);
    return a->f;
}

Result<int64_t> int_attr(const Node& node, const std::string& name, int64_t def) {
    const Attr* a = node.attr(name);
    if (a == nullptr) return def;
    if (a->kind != Attr::Kind::Int) return attr_kind_error(node, name, *a, Attr::Kind::Int);
    return a->i;
}

Result<std::vector<int64_t>> ints_attr(const Node& node, const std::string& name,
                                       std::vector<int64_t> def) {
    const Attr* a = node.attr(name);
    if (a == nullptr) return def;
    if (a->kind != Attr::Kind::Ints) return attr_kind_error(node, name, *a, Attr::Kind::Ints);
    return a->ints;
}

StridedIndex::StridedIndex(Shape dims, std::vector<std::vector<int64_t>> strides)
    : dims_(std::move(dims)),
      strides_(std::move(strides)),
      index_(dims_.size(), 0),
      offsets_(strides_.size(), 0) {}

void StridedIndex::seek(int64_t linear) {
    std::fill(offsets_.begin(), offsets_.end(), 0);
    for (size_t d = dims_.size(); d-- > 0;) {
        index_[d] = dims_[d] > 0 ? linear % dims_[d] : 0;
        linear = dims_[d] > 0 ? linear / dims_[d] : 0;
        for (size_t k = 0; k < strides_.size(); ++k) offsets_[k] += index_[d] * strides_[k][d];
    }
}

void StridedIndex::next() {
    // Odometer increment from the innermost dim; a dim that wraps gives back its whole span.
    for (size_t d = dims_.size(); d-- > 0;) {
        if (++index_[d] < dims_[d]) {
            for (size_t k = 0; k < strides_.size(); ++k) offsets_[k] += strides_[k][d];
            return;
        }
        index_[d] = 0;
        for (size_t k = 0; k < strides_.size(); ++k) {
            offsets_[k] -= (dims_[d] - 1) * strides_[k][d];
        }
    }
}

BroadcastLoop::BroadcastLoop(const Shape& out, std::span<const Shape> ins) {
    size_ = shape_numel(out);
    const size_t n = ins.size();
    std::vector<std::vector<int64_t>> full(n);
    for (size_t k = 0; k < n; ++k) full[k] = broadcast_strides(ins[k], out);

    // Keep output dims > 1, then merge a dim into the one before it when every operand steps
    // over the pair as over one dim (stride[d-1] == stride[d] * dims[d]; broadcast pairs have
    // both strides 0 and merge too).
    Shape dims;
    std::vector<std::vector<int64_t>> strides(n);
    for (size_t d = 0; d < out.size(); ++d) {
        if (out[d] == 1) continue;
        bool merge = !dims.empty();
        for (size_t k = 0; k < n && merge; ++k) {
            merge = strides[k].back() == full[k][d] * out[d];
        }
        if (merge) {
            dims.back() *= out[d];
            for (size_t k = 0; k < n; ++k) strides[k].back() = full[k][d];
        } else {
            dims.push_back(out[d]);
            for (size_t k = 0; k < n; ++k) strides[k].push_back(full[k][d]);
        }
    }
    if (dims.empty()) {  // scalar output or all dims 1: one run of one element
        dims.push_back(1);
        for (size_t k = 0; k < n; ++k) strides[k].push_back(0);
    }

    inner_ = std::max<int64_t>(dims.back(), 1);
    inner_stride_.resize(n);
    for (size_t k = 0; k < n; ++k) {
        inner_stride_[k] = strides[k].back();
        strides[k].pop_back();
    }
    dims.pop_back();
    outer_dims_ = std::move(dims);
    outer_strides_ = std::move(strides);
}

}  // namespace lowbit::ref
