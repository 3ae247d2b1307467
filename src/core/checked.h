// Overflow-checked size and shape arithmetic, and the limits every reader applies to sizes,
// counts and offsets that come from a file before it allocates anything.
//
// A reader never trusts a declared size: it computes the byte count with these helpers (which
// fail instead of wrapping), checks it against the stated limit below and against the bytes the
// file really holds, and only then allocates.
#pragma once

#include <cstdint>
#include <limits>
#include <string>

#include "core/dtype.h"
#include "core/status.h"
#include "core/tensor.h"

namespace lowbit {

// Largest rank a tensor read from a file may have (ONNX and numpy allow 32 / 64; no model of
// ours needs more than 6).
inline constexpr size_t kMaxTensorRank = 64;
// Largest tensor (bytes) a reader will allocate: 64 GiB. Real data is also bounded by the
// file's size; this limit stops a header from asking for terabytes it then cannot fill.
inline constexpr uint64_t kMaxTensorBytes = uint64_t{64} << 30;
// Largest whole file read_file() reads into memory unless told otherwise: 4 GiB.
inline constexpr uint64_t kMaxReadFileBytes = uint64_t{4} << 30;

// a * b and a + b for non-negative sizes; false when the result does not fit.
inline bool checked_mul(uint64_t a, uint64_t b, uint64_t* out) {
    return !__builtin_mul_overflow(a, b, out);
}
inline bool checked_add(uint64_t a, uint64_t b, uint64_t* out) {
    return !__builtin_add_overflow(a, b, out);
}
inline bool checked_mul(int64_t a, int64_t b, int64_t* out) {
    return !__builtin_mul_overflow(a, b, out);
}

// Element count of a shape read from a file: every dim >= 0, rank <= kMaxTensorRank, product
// without overflow. `what` names the tensor/file in the error.
inline Result<int64_t> checked_numel(const Shape& shape, const std::string& what) {
    if (shape.size() > kMaxTensorRank) {
        return invalid("{}: rank {} is above the limit of {}", what, shape.size(), kMaxTensorRank);
    }
    int64_t n = 1;
    for (int64_t d : shape) {
        if (d < 0) return invalid("{}: negative dimension in {}", what, shape_str(shape));
        if (d == 0) n = 0;  // an empty tensor, however large the other dims
    }
    if (n == 0) return n;
    for (int64_t d : shape) {
        if (!checked_mul(n, d, &n)) {
            return invalid("{}: shape {} has more elements than fit in 64 bits", what,
                           shape_str(shape));
        }
    }
    return n;
}

// Byte size of a dtype + shape read from a file, checked as above and against kMaxTensorBytes.
inline Result<uint64_t> checked_nbytes(DType dtype, const Shape& shape, const std::string& what) {
    LOWBIT_ASSIGN(int64_t n, checked_numel(shape, what));
    uint64_t bytes = 0;
    if (!checked_mul(static_cast<uint64_t>(n), static_cast<uint64_t>(dtype_size(dtype)), &bytes) ||
        bytes > kMaxTensorBytes) {
        return invalid("{}: {} {} would take more than the limit of {} GiB", what,
                       dtype_name(dtype), shape_str(shape), kMaxTensorBytes >> 30);
    }
    return bytes;
}

// Parses a whole string as a non-negative decimal integer (no sign, no spaces, no suffix) that
// fits in int64; nullopt-like false otherwise. For offsets and lengths written as text.
inline bool parse_size(const std::string& s, int64_t* out) {
    if (s.empty() || s.size() > 19) return false;
    uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
        v = v * 10 + static_cast<uint64_t>(c - '0');
    }
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
    *out = static_cast<int64_t>(v);
    return true;
}

}  // namespace lowbit
