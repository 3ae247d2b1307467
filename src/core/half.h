// Conversions between float and the 16- and 8-bit float formats ONNX stores.
// All float -> narrow conversions round to nearest, ties to even (IEEE 754 default, as ONNX
// Cast/QuantizeLinear and ONNX Runtime do). FP8 rules follow the ONNX Cast-19 table:
//   saturate=true : |x| beyond the largest finite value -> +-max; +-inf -> +-max for the
//                   FN/E5M2 types and NaN for the FNUZ types; NaN -> NaN.
//   saturate=false: out of range -> NaN (E4M3FN, FNUZ types) or +-inf (E5M2).
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace lowbit {

float half_to_float(uint16_t h);
uint16_t float_to_half(float f);
float bfloat16_to_float(uint16_t b);
uint16_t float_to_bfloat16(float f);

// `t` must be one of the four FP8 types.
float fp8_to_float(uint8_t v, DType t);
uint8_t float_to_fp8(float f, DType t, bool saturate = true);
// Largest finite value of an FP8 type (448 for E4M3FN, 240 for E4M3FNUZ, 57344 for E5M2*).
float fp8_max(DType t);

}  // namespace lowbit
