#include "core/dtype.h"

#include <fmt/format.h>

namespace lowbit {

size_t dtype_size(DType t) {
    switch (t) {
        case DType::Float32: return 4;
        case DType::UInt8: return 1;
        case DType::Int8: return 1;
        case DType::UInt16: return 2;
        case DType::Int16: return 2;
        case DType::Int32: return 4;
        case DType::Int64: return 8;
        case DType::Bool: return 1;
        case DType::Float16: return 2;
        case DType::Float64: return 8;
        case DType::UInt32: return 4;
        case DType::UInt64: return 8;
        case DType::BFloat16: return 2;
        case DType::Float8E4M3FN:
        case DType::Float8E4M3FNUZ:
        case DType::Float8E5M2:
        case DType::Float8E5M2FNUZ:
        case DType::UInt4:
        case DType::Int4: return 1;
        case DType::String:
        case DType::Undefined: return 0;
    }
    return 0;
}

std::string dtype_name(DType t) {
    switch (t) {
        case DType::Undefined: return "undefined";
        case DType::Float32: return "float32";
        case DType::UInt8: return "uint8";
        case DType::Int8: return "int8";
        case DType::UInt16: return "uint16";
        case DType::Int16: return "int16";
        case DType::Int32: return "int32";
        case DType::Int64: return "int64";
        case DType::String: return "string";
        case DType::Bool: return "bool";
        case DType::Float16: return "float16";
        case DType::Float64: return "float64";
        case DType::UInt32: return "uint32";
        case DType::UInt64: return "uint64";
        case DType::BFloat16: return "bfloat16";
        case DType::Float8E4M3FN: return "float8e4m3fn";
        case DType::Float8E4M3FNUZ: return "float8e4m3fnuz";
        case DType::Float8E5M2: return "float8e5m2";
        case DType::Float8E5M2FNUZ: return "float8e5m2fnuz";
        case DType::UInt4: return "uint4";
        case DType::Int4: return "int4";
    }
    return fmt::format("dtype({})", static_cast<int>(t));
}

bool dtype_known(int32_t code) {
    return (code >= 1 && code <= 13 && code != 8) || (code >= 16 && code <= 22);
}

bool dtype_is_float(DType t) {
    switch (t) {
        case DType::Float32:
        case DType::Float16:
        case DType::Float64:
        case DType::BFloat16:
        case DType::Float8E4M3FN:
        case DType::Float8E4M3FNUZ:
        case DType::Float8E5M2:
        case DType::Float8E5M2FNUZ: return true;
        default: return false;
    }
}

}  // namespace lowbit
