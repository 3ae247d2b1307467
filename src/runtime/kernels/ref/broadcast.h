// Shared helpers of the reference kernels:
//  - NumPy-style (multidirectional) broadcasting of shapes (onnx/docs/Broadcasting.md);
//  - StridedIndex, a row-major N-d walker that keeps one element offset per operand without a
//    div/mod per element, and BroadcastLoop, which walks an N-ary broadcast in contiguous runs;
//  - dtype dispatch (DTypeList::visit) and element conversion between dtypes (convert_value),
//    with the float -> integer rule that ONNX Runtime has on x86-64;
//  - prepare() helpers: input-count and attribute-kind checks with messages naming the node.
// Everything here is header-light and allocation-free in the per-element paths.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "core/half.h"
#include "core/status.h"
#include "core/tensor.h"
#include "ir/graph.h"
#include "runtime/kernel.h"

namespace lowbit::ref {

// ---------------------------------------------------------------------------------------------
// Shapes

// Multidirectional broadcast of `shapes` (right-aligned; each dim pair equal or one of them 1).
// A zero-size dim broadcasts with 1 to 0. Fails naming both shapes when they are incompatible.
Result<Shape> broadcast_shapes(std::span<const Shape> shapes);
Result<Shape> broadcast_shapes(const Shape& a, const Shape& b);
// Unidirectional broadcast (PRelu's slope, Expand): can `from` be broadcast to exactly `to`?
bool broadcastable_to(const Shape& from, const Shape& to);

// Element strides of a row-major tensor of shape `s`.
std::vector<int64_t> contiguous_strides(const Shape& s);
// Strides for reading a row-major tensor of shape `in` as if it were broadcast to `out`:
// right-aligned, 0 on every dim where `in` has size 1 (or is missing) and `out` does not.
// `in` must be broadcastable to `out`.
std::vector<int64_t> broadcast_strides(const Shape& in, const Shape& out);

// Maps an axis in [-rank, rank) to [0, rank); fails naming node, attribute and rank otherwise.
Result<int64_t> normalize_axis(int64_t axis, int64_t rank, const Node& node, const char* what);

// ---------------------------------------------------------------------------------------------
// prepare() helpers

// The node must have between min_inputs and max_inputs inputs and the first min_inputs present.
Status check_input_count(const PrepareContext& ctx, size_t min_inputs, size_t max_inputs);
// "Add 'n': input 1 has dtype int8; Add supports float32, ..." (StatusCode::Unsupported).
Status dtype_error(const Node& node, size_t input, DType got, const std::string& supported);
// Attribute readers that check the attribute's kind (a model may carry an int where a float is
// expected); absent attributes give `def`.
Result<float> float_attr(const Node& node, const std::string& name, float def);
Result<int64_t> int_attr(const Node& node, const std::string& name, int64_t def);
Result<std::vector<int64_t>> ints_attr(const Node& node, const std::string& name,
                                       std::vector<int64_t> def = {});

// ---------------------------------------------------------------------------------------------
// Index walking

// Walks the row-major index space of `dims` and keeps, for each operand k, the element offset
// sum_d index[d] * strides[k][d]. seek() costs one div/mod per dim; next() is O(1) amortized.
class StridedIndex {
public:
    StridedIndex(Shape dims, std::vector<std::vector<int64_t>> strides);

    void seek(int64_t linear);
    void next();
    int64_t offset(size_t k) const { return offsets_[k]; }
    const int64_t* offsets() const { return offsets_.data(); }
    const Shape& dims() const { return dims_; }
    size_t num_operands() const { return strides_.size(); }

private:
    Shape dims_;
    std::vector<std::vector<int64_t>> strides_;  // [operand][dim]
    std::vector<int64_t> index_;
    std::vector<int64_t> offsets_;
};

// Walks an output of shape `out` whose operands (of shapes `ins`) are broadcast to it, as a
// sequence of contiguous runs of the output. Within a run each operand is either contiguous
// (inner_stride 1) or constant (inner_stride 0), so a same-shape op is one run, a scalar
// operand has stride 0, and a per-channel operand ([1,C,1,1] against [N,C,H,W]) is constant over
// each H*W run. Dims of size 1 are dropped and dims that every operand walks the same way are
// merged before walking.
class BroadcastLoop {
public:
    BroadcastLoop() = default;
    // Every shape in `ins` must be broadcastable to `out`.
    BroadcastLoop(const Shape& out, std::span<const Shape> ins);

    int64_t size() const { return size_; }
    size_t num_inputs() const { return inner_stride_.size(); }
    int64_t inner_stride(size_t k) const { return inner_stride_[k]; }

    // Calls f(out_offset, in_offsets, len) for the runs covering output elements
    // [begin, end); in_offsets[k] is operand k's element offset at out_offset. Safe to call
    // concurrently on disjoint ranges.
    template <class F>
    void for_each_run(int64_t begin, int64_t end, F&& f) const {
        if (begin >= end) return;
        StridedIndex outer(outer_dims_, outer_strides_);
        const int64_t row = begin / inner_;
        int64_t col = begin % inner_;
        outer.seek(row);
        std::vector<int64_t> offs(inner_stride_.size());
        int64_t pos = begin;
        while (pos < end) {
            const int64_t len = std::min(inner_ - col, end - pos);
            for (size_t k = 0; k < offs.size(); ++k) {
                offs[k] = outer.offset(k) + col * inner_stride_[k];
            }
            f(pos, static_cast<const int64_t*>(offs.data()), len);
            pos += len;
            col = 0;
            if (pos < end) outer.next();
        }
    }

private:
    int64_t size_ = 0;
    int64_t inner_ = 1;                                // length of a full run
    std::vector<int64_t> inner_stride_;                // [operand], 0 or 1
    Shape outer_dims_;                                 // merged dims above the run
    std::vector<std::vector<int64_t>> outer_strides_;  // [operand][outer dim]
};

// ---------------------------------------------------------------------------------------------
// DType dispatch

// Storage: the C++ type in memory. Value: the type kernels compute in (float for the 16- and
// 8-bit float formats, bool for Bool). load/store convert between them; store rounds to nearest
// even. FP8 store saturates by default (see core/half.h for the non-saturating rules).
template <DType D>
struct DTypeTraits;

#define LOWBIT_PLAIN_DTYPE(D, T)                    \
    template <>                                     \
    struct DTypeTraits<D> {                         \
        using Storage = T;                          \
        using Value = T;                            \
        static Value load(Storage s) { return s; }  \
        static Storage store(Value v) { return v; } \
    }
LOWBIT_PLAIN_DTYPE(DType::Float32, float);
LOWBIT_PLAIN_DTYPE(DType::Float64, double);
LOWBIT_PLAIN_DTYPE(DType::Int8, int8_t);
LOWBIT_PLAIN_DTYPE(DType::Int16, int16_t);
LOWBIT_PLAIN_DTYPE(DType::Int32, int32_t);
LOWBIT_PLAIN_DTYPE(DType::Int64, int64_t);
LOWBIT_PLAIN_DTYPE(DType::UInt8, uint8_t);
LOWBIT_PLAIN_DTYPE(DType::UInt16, uint16_t);
LOWBIT_PLAIN_DTYPE(DType::UInt32, uint32_t);
LOWBIT_PLAIN_DTYPE(DType::UInt64, uint64_t);
#undef LOWBIT_PLAIN_DTYPE

// 4-bit integers are held one value per byte in memory (core/dtype.h): int8_t (sign-extended)
// and uint8_t. Only DequantizeLinear accepts them.
template <>
struct DTypeTraits<DType::Int4> {
    using Storage = int8_t;
    using Value = int8_t;
    static Value load(Storage s) { return s; }
    static Storage store(Value v) { return v; }
};
template <>
struct DTypeTraits<DType::UInt4> {
    using Storage = uint8_t;
    using Value = uint8_t;
    static Value load(Storage s) { return s; }
    static Storage store(Value v) { return v; }
};

template <>
struct DTypeTraits<DType::Bool> {
    using Storage = uint8_t;
    using Value = bool;
    static Value load(Storage s) { return s != 0; }
    static Storage store(Value v) { return v ? 1 : 0; }
};
template <>
struct DTypeTraits<DType::Float16> {
    using Storage = uint16_t;
    using Value = float;
    static Value load(Storage s) { return half_to_float(s); }
    static Storage store(Value v) { return float_to_half(v); }
};
template <>
struct DTypeTraits<DType::BFloat16> {
    using Storage = uint16_t;
    using Value = float;
    static Value load(Storage s) { return bfloat16_to_float(s); }
    static Storage store(Value v) { return float_to_bfloat16(v); }
};

template <DType D>
struct Fp8Traits {
    using Storage = uint8_t;
    using Value = float;
    // The table and the inline conversion equal fp8_to_float / float_to_fp8 bit for bit.
    static Value load(Storage s) { return fp8_table<D>[s]; }
    static Storage store(Value v, bool saturate = true) {
        return float_to_fp8_fast<D>(v, saturate);
    }
};
template <>
struct DTypeTraits<DType::Float8E4M3FN> : Fp8Traits<DType::Float8E4M3FN> {};
template <>
struct DTypeTraits<DType::Float8E4M3FNUZ> : Fp8Traits<DType::Float8E4M3FNUZ> {};
template <>
struct DTypeTraits<DType::Float8E5M2> : Fp8Traits<DType::Float8E5M2> {};
template <>
struct DTypeTraits<DType::Float8E5M2FNUZ> : Fp8Traits<DType::Float8E5M2FNUZ> {};

// Passed to dispatch callbacks: tag.value is the dtype, decltype(tag)::Traits its traits.
template <DType D>
struct DTypeTag {
    static constexpr DType value = D;
    using Traits = DTypeTraits<D>;
    using Storage = typename Traits::Storage;
    using Value = typename Traits::Value;
};

// A compile-time set of dtypes. visit(t, f) calls f(DTypeTag<t>{}) when t is in the set and
// returns whether it was.
template <DType... Ds>
struct DTypeList {
    static constexpr bool contains(DType t) { return ((t == Ds) || ...); }
    template <class F>
    static bool visit(DType t, F&& f) {
        return ((t == Ds && (f(DTypeTag<Ds>{}), true)) || ...);
    }
    // "float32, float16, ..." for error messages.
    static std::string names() {
        std::string s;
        ((s += (s.empty() ? "" : ", ") + dtype_name(Ds)), ...);
        return s;
    }
};

template <class A, class B>
struct DTypeConcat;
template <DType... As, DType... Bs>
struct DTypeConcat<DTypeList<As...>, DTypeList<Bs...>> {
    using type = DTypeList<As..., Bs...>;
};

using FloatDTypes = DTypeList<DType::Float32, DType::Float16, DType::Float64, DType::BFloat16>;
using SignedIntDTypes = DTypeList<DType::Int8, DType::Int16, DType::Int32, DType::Int64>;
using UnsignedIntDTypes = DTypeList<DType::UInt8, DType::UInt16, DType::UInt32, DType::UInt64>;
using IntDTypes = DTypeConcat<SignedIntDTypes, UnsignedIntDTypes>::type;
using SignedDTypes = DTypeConcat<FloatDTypes, SignedIntDTypes>::type;
using NumericDTypes = DTypeConcat<FloatDTypes, IntDTypes>::type;
using Fp8DTypes =
    DTypeList<DType::Float8E4M3FN, DType::Float8E4M3FNUZ, DType::Float8E5M2, DType::Float8E5M2FNUZ>;
// Every dtype a tensor can hold except String.
using AllDTypes =
    DTypeConcat<DTypeConcat<NumericDTypes, Fp8DTypes>::type, DTypeList<DType::Bool>>::type;

// ---------------------------------------------------------------------------------------------
// Element arithmetic

// Integer arithmetic that wraps modulo 2^bits on overflow (ONNX Runtime's behaviour in practice;
// signed overflow is undefined in C++). Plain arithmetic for floating point.
template <class V>
V add_wrap(V a, V b) {
    if constexpr (std::is_integral_v<V>) {
        V r;
        __builtin_add_overflow(a, b, &r);
        return r;
    } else {
        return a + b;
    }
}
template <class V>
V sub_wrap(V a, V b) {
    if constexpr (std::is_integral_v<V>) {
        V r;
        __builtin_sub_overflow(a, b, &r);
        return r;
    } else {
        return a - b;
    }
}
template <class V>
V mul_wrap(V a, V b) {
    if constexpr (std::is_integral_v<V>) {
        V r;
        __builtin_mul_overflow(a, b, &r);
        return r;
    } else {
        return a * b;
    }
}
template <class V>
V neg_wrap(V a) {
    return sub_wrap(V(0), a);
}
// std::isnan for floating point, false for integers and bool.
template <class V>
bool is_nan(V v) {
    if constexpr (std::is_floating_point_v<V>) {
        return std::isnan(v);
    } else {
        return false;
    }
}

// ---------------------------------------------------------------------------------------------
// Element conversion

// Float -> integer conversion as ONNX Runtime does it on x86-64 (a C++ static_cast compiled by
// GCC/Clang): truncate toward zero; 8-, 16- and 32-bit signed targets go through a 32-bit
// cvttss2si, so a value outside int32 (or NaN) gives INT32_MIN truncated to the target width;
// uint32 and 64-bit targets go through a 64-bit conversion (INT64_MIN when outside int64 or NaN),
// uint64 also converts [2^63, 2^64) exactly. In range, results wrap modulo 2^bits like NumPy.
// ONNX leaves out-of-range conversions undefined; this makes ours deterministic and equal to
// the peer we compare against.
template <class I>
I float_to_int(double v) {
    static_assert(std::is_integral_v<I>);
    const double t = std::trunc(v);
    if constexpr (sizeof(I) <= 4 && !std::is_same_v<I, uint32_t>) {
        const bool in_range = t >= -2147483648.0 && t < 2147483648.0;  // false for NaN
        const int32_t i = in_range ? static_cast<int32_t>(t) : std::numeric_limits<int32_t>::min();
        return static_cast<I>(i);
    } else {
        if constexpr (std::is_same_v<I, uint64_t>) {
            if (t >= 9223372036854775808.0 && t < 18446744073709551616.0) {
                return static_cast<uint64_t>(t);
            }
        }
        const bool in_range = t >= -9223372036854775808.0 && t < 9223372036854775808.0;
        const int64_t i = in_range ? static_cast<int64_t>(t) : std::numeric_limits<int64_t>::min();
        return static_cast<I>(i);
    }
}

// Converts a Value of any dtype (float, double, bool or an integer) to dtype D's storage, as
// ONNX Cast does: integers wrap modulo 2^bits, floats to integers per float_to_int, anything to
// bool is `v != 0` (NaN is true), wider floats round to nearest even (through float for the
// 16- and 8-bit formats, as ONNX Runtime does). `saturate` only matters for FP8 targets.
template <DType D, class V>
typename DTypeTraits<D>::Storage convert_value(V v, bool saturate = true) {
    using Traits = DTypeTraits<D>;
    using S = typename Traits::Storage;
    if constexpr (D == DType::Bool) {
        return v != V(0) ? 1 : 0;
    } else if constexpr (D == DType::Float32 || D == DType::Float64) {
        return static_cast<S>(v);
    } else if constexpr (D == DType::Float16 || D == DType::BFloat16) {
        return Traits::store(static_cast<float>(v));
    } else if constexpr (D == DType::Float8E4M3FN || D == DType::Float8E4M3FNUZ ||
                         D == DType::Float8E5M2 || D == DType::Float8E5M2FNUZ) {
        return Traits::store(static_cast<float>(v), saturate);
    } else if constexpr (std::is_floating_point_v<V>) {
        return float_to_int<S>(static_cast<double>(v));
    } else {
        return static_cast<S>(v);  // integer or bool source: modular (C++20)
    }
}

}  // namespace lowbit::ref
