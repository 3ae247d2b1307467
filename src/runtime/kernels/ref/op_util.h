// Helpers shared by the reference tensor-op and nn kernels, on top of broadcast.h (which has
// int_attr/float_attr/ints_attr, normalize_axis, check_input_count, contiguous_strides):
// unknown-attribute rejection, string/float-list attributes, axis lists, plan-time parameter
// inputs, dtype/rank checks and a strided N-D copy. Internal to kernels/ref.
// Every error names the node (Node::describe() gives op type and name) and the attribute/input.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"
#include "ir/graph.h"
#include "runtime/kernel.h"
#include "runtime/kernels/ref/broadcast.h"
#include "runtime/registry.h"

namespace lowbit::ref {

// Scratch sized in prepare() for a run() whose element type follows the input dtype (an
// accumulator, a running best), so that run() allocates nothing: room for `n` arithmetic values
// of up to 8 bytes each.
class DTypeScratch {
public:
    void resize(int64_t n) { words_.assign(static_cast<size_t>(std::max<int64_t>(n, 0)), 0); }
    template <typename T>
    T* as() {
        static_assert(std::is_arithmetic_v<T> && sizeof(T) <= sizeof(uint64_t));
        return reinterpret_cast<T*>(words_.data());
    }

private:
    std::vector<uint64_t> words_;
};

// Rejects attributes the kernel does not interpret, so an attribute added by a newer opset is
// never silently ignored.
inline Status check_known_attrs(const Node& node, std::initializer_list<std::string_view> known) {
    for (const auto& [key, attr] : node.attrs) {
        if (std::find(known.begin(), known.end(), std::string_view(key)) == known.end()) {
            return unsupported("{}: attribute '{}' is not supported by this kernel",
                               node.describe(), key);
        }
    }
    return Status::ok();
}

inline Status check_attr_kind(const Node& node, const Attr& a, const std::string& key,
                              Attr::Kind kind) {
    if (a.kind != kind) {
        return invalid("{}: attribute '{}' must be of kind {}, got {}", node.describe(), key,
                       attr_kind_name(kind), attr_kind_name(a.kind));
    }
    return Status::ok();
}

inline Result<std::string> string_attr(const Node& node, const std::string& key,
                                       const std::string& def) {
    const Attr* a = node.attr(key);
    if (a == nullptr) return def;
    LOWBIT_TRY(check_attr_kind(node, *a, key, Attr::Kind::String));
    return a->s;
}

inline Result<std::vector<float>> floats_attr(const Node& node, const std::string& key,
                                              const std::vector<float>& def = {}) {
    const Attr* a = node.attr(key);
    if (a == nullptr) return def;
    LOWBIT_TRY(check_attr_kind(node, *a, key, Attr::Kind::Floats));
    return a->floats;
}

// Normalises a list of axes and rejects duplicates.
inline Result<std::vector<int64_t>> normalize_axis_list(const Node& node, const char* what,
                                                        const std::vector<int64_t>& axes,
                                                        int64_t rank) {
    std::vector<int64_t> out;
    for (int64_t a : axes) {
        LOWBIT_ASSIGN(int64_t n, normalize_axis(a, rank, node, what));
        if (std::find(out.begin(), out.end(), n) != out.end()) {
            return invalid("{}: {} lists axis {} twice", node.describe(), what, a);
        }
        out.push_back(n);
    }
    return out;
}

// The value of an integer parameter input (Reshape's shape, Slice's starts, ...), which must be
// known at plan time: this engine plans static shapes.
inline Result<std::vector<int64_t>> plan_time_ints(const PrepareContext& ctx, size_t i,
                                                   const char* what) {
    const TensorInfo& info = ctx.inputs[i];
    if (info.dtype != DType::Int64 && info.dtype != DType::Int32) {
        return invalid("{}: input '{}' must be int64 or int32, got {}", ctx.node.describe(), what,
                       dtype_name(info.dtype));
    }
    if (!info.value) {
        return unsupported(
            "{}: input '{}' ({}) must be known at plan time (an initializer, a Constant or a "
            "foldable subgraph); data-dependent shapes are not supported",
            ctx.node.describe(), what, ctx.node.inputs[i]);
    }
    return tensor_to_i64(*info.value);
}

inline Status require_dtype(const Node& node, const char* what, DType got,
                            std::initializer_list<DType> allowed) {
    if (std::find(allowed.begin(), allowed.end(), got) != allowed.end()) return Status::ok();
    std::string names;
    for (DType d : allowed) names += (names.empty() ? "" : ", ") + dtype_name(d);
    return unsupported("{}: input '{}' has dtype {}; this kernel supports {}", node.describe(),
                       what, dtype_name(got), names);
}

// Data-movement kernels copy bytes, so they take every fixed-size dtype (not strings).
inline Status require_movable(const Node& node, const char* what, DType got) {
    if (got == DType::Undefined || got == DType::String || dtype_size(got) == 0) {
        return unsupported("{}: input '{}' has dtype {}, which this kernel cannot move",
                           node.describe(), what, dtype_name(got));
    }
    return Status::ok();
}

inline Status require_rank(const Node& node, const char* what, const Shape& s, size_t min_rank,
                           size_t max_rank) {
    if (s.size() < min_rank || s.size() > max_rank) {
        return unsupported("{}: input '{}' has shape {}; rank must be in [{}, {}]", node.describe(),
                           what, shape_str(s), min_rank, max_rank);
    }
    return Status::ok();
}

// Product of dims [begin, end).
inline int64_t dims_product(const Shape& s, size_t begin, size_t end) {
    int64_t n = 1;
    for (size_t i = begin; i < end && i < s.size(); ++i) n *= s[i];
    return n;
}

// True when the node names an output at position i (optional outputs may be "" or missing).
inline bool output_named(const Node& node, size_t i) {
    return i < node.outputs.size() && !node.outputs[i].empty();
}

// Copies an N-D strided view into a dense row-major output. Output element at multi-index o
// reads src[src_offset + sum(o[i] * src_strides[i])] (strides in elements, may be 0 for
// broadcasting or negative for reversed slices). `elem` is the element size in bytes.
inline void strided_copy(const void* src, int64_t src_offset,
                         const std::vector<int64_t>& src_strides, void* dst, const Shape& out_shape,
                         size_t elem) {
    const int64_t total = shape_numel(out_shape);
    if (total == 0) return;
    const auto* s = static_cast<const char*>(src);
    auto* d = static_cast<char*>(dst);
    const size_t rank = out_shape.size();
    if (rank == 0) {
        std::memcpy(d, s + src_offset * static_cast<int64_t>(elem), elem);
        return;
    }
    const int64_t inner = out_shape[rank - 1];
    const int64_t inner_stride = src_strides[rank - 1];
    std::vector<int64_t> idx(rank, 0);
    int64_t src_pos = src_offset;  // element offset of the current output row's first element
    for (int64_t row = 0; row < total / inner; ++row) {
        char* out_row = d + row * inner * static_cast<int64_t>(elem);
        if (inner_stride == 1) {
            std::memcpy(out_row, s + src_pos * static_cast<int64_t>(elem),
                        static_cast<size_t>(inner) * elem);
        } else {
            for (int64_t j = 0; j < inner; ++j) {
                std::memcpy(out_row + j * static_cast<int64_t>(elem),
                            s + (src_pos + j * inner_stride) * static_cast<int64_t>(elem), elem);
            }
        }
        // Advance the odometer over the outer dims (rank-2 .. 0).
        for (size_t k = rank - 1; k-- > 0;) {
            src_pos += src_strides[k];
            if (++idx[k] < out_shape[k]) break;
            src_pos -= src_strides[k] * out_shape[k];
            idx[k] = 0;
        }
    }
}

// ---- sliding windows (Conv, ConvTranspose, MaxPool, AveragePool) ----------------------------

// One spatial axis of a sliding-window op: input size, kernel size, stride, dilation, padding
// at both ends and output size.
struct WindowAxis {
    int64_t in = 1, k = 1, stride = 1, dilation = 1, pad_begin = 0, pad_end = 0, out = 1;
    int64_t extent() const { return (k - 1) * dilation + 1; }  // dilated kernel size
};

// Reads strides, dilations, pads and auto_pad for the spatial dims of `x` (shape [N, C, ...])
// given the kernel sizes, and computes each axis's output size (Conv/MaxPool/AveragePool spec):
//   NOTSET: out = floor((in + pad_begin + pad_end - extent) / stride) + 1, or with ceil_mode the
//           ceiling, dropping a last window that would start in the end padding (as ORT and
//           PyTorch do; ONNX 1.16 documents it);
//   VALID:  no padding, same formula;
//   SAME_UPPER / SAME_LOWER: out = ceil(in / stride), total padding max(0, (out - 1) * stride +
//           extent - in), the odd extra at the end (UPPER) or at the beginning (LOWER).
inline Result<std::vector<WindowAxis>> window_axes(const Node& node, const Shape& x,
                                                   const std::vector<int64_t>& kernel,
                                                   bool ceil_mode, bool allow_dilations = true) {
    const size_t n = kernel.size();
    LOWBIT_ASSIGN(std::vector<int64_t> strides,
                  ints_attr(node, "strides", std::vector<int64_t>(n, 1)));
    LOWBIT_ASSIGN(std::vector<int64_t> dilations,
                  ints_attr(node, "dilations", std::vector<int64_t>(n, 1)));
    LOWBIT_ASSIGN(std::vector<int64_t> pads,
                  ints_attr(node, "pads", std::vector<int64_t>(2 * n, 0)));
    LOWBIT_ASSIGN(std::string auto_pad, string_attr(node, "auto_pad", "NOTSET"));
    if (strides.size() != n || dilations.size() != n || pads.size() != 2 * n) {
        return invalid("{}: strides {}, dilations {} and pads {} must match {} spatial dims",
                       node.describe(), shape_str(strides), shape_str(dilations), shape_str(pads),
                       n);
    }
    if (!allow_dilations) {
        for (int64_t d : dilations) {
            if (d != 1) {
                return unsupported("{}: attribute 'dilations' {} is not supported", node.describe(),
                                   shape_str(dilations));
            }
        }
    }
    if (auto_pad != "NOTSET" && auto_pad != "VALID" && auto_pad != "SAME_UPPER" &&
        auto_pad != "SAME_LOWER") {
        return unsupported("{}: attribute 'auto_pad' value '{}' is not supported", node.describe(),
                           auto_pad);
    }
    std::vector<WindowAxis> axes(n);
    for (size_t i = 0; i < n; ++i) {
        WindowAxis& a = axes[i];
        a.in = x[2 + i];
        a.k = kernel[i];
        a.stride = strides[i];
        a.dilation = dilations[i];
        if (a.k < 1 || a.stride < 1 || a.dilation < 1) {
            return invalid("{}: kernel {}, strides {} and dilations {} must be positive",
                           node.describe(), shape_str(kernel), shape_str(strides),
                           shape_str(dilations));
        }
        if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
            a.out = (a.in + a.stride - 1) / a.stride;
            const int64_t total = std::max<int64_t>(0, (a.out - 1) * a.stride + a.extent() - a.in);
            a.pad_begin = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
            a.pad_end = total - a.pad_begin;
            continue;
        }
        if (auto_pad == "NOTSET") {
            a.pad_begin = pads[i];
            a.pad_end = pads[i + n];
            if (a.pad_begin < 0 || a.pad_end < 0) {
                return invalid("{}: pads {} must not be negative", node.describe(),
                               shape_str(pads));
            }
        }
        const int64_t span = a.in + a.pad_begin + a.pad_end - a.extent();
        if (span < 0) {
            return invalid(
                "{}: kernel extent {} exceeds the padded input size {} on spatial axis {}",
                node.describe(), a.extent(), a.in + a.pad_begin + a.pad_end, i);
        }
        a.out = (ceil_mode ? (span + a.stride - 1) / a.stride : span / a.stride) + 1;
        if (ceil_mode && (a.out - 1) * a.stride >= a.in + a.pad_begin) --a.out;
    }
    return axes;
}

// Registration of the split reference files (tensor_ops*.cpp, nn family files).
void register_tensor_copy_kernels(KernelRegistry& r);
void register_tensor_index_kernels(KernelRegistry& r);
void register_conv_kernels(KernelRegistry& r);
void register_pool_kernels(KernelRegistry& r);
void register_matmul_kernels(KernelRegistry& r);
void register_resize_kernels(KernelRegistry& r);
void register_grid_sample_kernels(KernelRegistry& r);

}  // namespace lowbit::ref
