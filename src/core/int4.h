// 4-bit integers (ONNX INT4 = 22, UINT4 = 21; IR version 10, QuantizeLinear/DequantizeLinear-21).
//
// In memory lowbit holds them one value per byte (core/dtype.h); in a file they are packed two
// values a byte as the ONNX spec orders them: element 2k in the low nibble (bits 0-3) of byte k,
// element 2k+1 in the high nibble (bits 4-7); an odd count leaves the last high nibble 0. INT4
// nibbles are two's complement (-8..7), UINT4 nibbles 0..15.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

namespace lowbit {

// Bytes that `n` packed 4-bit values take: ceil(n / 2).
inline size_t int4_packed_bytes(int64_t n) {
    return static_cast<size_t>((n + 1) / 2);
}

// Packs n values (the low 4 bits of each byte of `values`) into int4_packed_bytes(n) bytes.
void pack_int4(const uint8_t* values, int64_t n, uint8_t* packed);
std::string pack_int4(const uint8_t* values, int64_t n);

// Unpacks n values from `packed`; `is_signed` sign-extends each nibble (INT4), else 0..15.
void unpack_int4(const uint8_t* packed, int64_t n, bool is_signed, uint8_t* values);

// QuantizeLinear onto the symmetric INT4 grid: round_half_even(x / scale) clamped to [-8, 7]
// (x / scale one float32 division, as QuantizeLinear; NaN gives 0).
inline int8_t quantize_int4(float x, float scale) {
    const float v = std::nearbyint(x / scale);
    if (v != v) return 0;
    return static_cast<int8_t>(v < -8.0f ? -8.0f : (v > 7.0f ? 7.0f : v));
}

// Largest magnitude a symmetric INT4 weight scale maps |w|max onto (scale = amax / 7; -8 is
// reachable only by rounding, as -128 is for INT8).
constexpr double kInt4Max = 7.0;

}  // namespace lowbit
