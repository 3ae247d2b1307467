// Element types, spelled and numbered as ONNX TensorProto.DataType (FP8 codes 17-20 and the 4-bit
// integers 21-22 included).
//
// UInt4 and Int4 are held one value per byte in memory (uint8_t / int8_t, Int4 sign-extended), so
// every kernel indexes them like UInt8 / Int8; only files store them packed, two values a byte
// (onnx/model_io unpacks once at load and packs at save; core/int4.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace lowbit {

enum class DType : int32_t {
    Undefined = 0,
    Float32 = 1,
    UInt8 = 2,
    Int8 = 3,
    UInt16 = 4,
    Int16 = 5,
    Int32 = 6,
    Int64 = 7,
    String = 8,
    Bool = 9,
    Float16 = 10,
    Float64 = 11,
    UInt32 = 12,
    UInt64 = 13,
    BFloat16 = 16,
    Float8E4M3FN = 17,
    Float8E4M3FNUZ = 18,
    Float8E5M2 = 19,
    Float8E5M2FNUZ = 20,
    UInt4 = 21,
    Int4 = 22,
};

// Bytes per element in memory (1 for UInt4 / Int4, see above); 0 for Undefined and String.
size_t dtype_size(DType t);
// ONNX-style lower-case name ("float32", "float8e4m3fn"); "dtype(N)" for unknown codes.
std::string dtype_name(DType t);
// True for codes this library can store and move (everything above except String/Undefined).
bool dtype_known(int32_t code);
bool dtype_is_float(DType t);  // float16/32/64, bfloat16 and the four FP8 types

}  // namespace lowbit
