#include "core/tensor.h"

#include <fmt/format.h>

#include <cstdlib>
#include <new>

#include "core/half.h"
#include "core/status.h"

namespace lowbit {

int64_t shape_numel(const Shape& s) {
    // A zero dim makes the product 0 whatever the others are ([2^62, 69, 0] must not overflow
    // on the way: found by fuzz_onnx). Shapes from files are checked by core/checked.h first;
    // the unsigned product keeps a computed shape that does not fit defined behaviour.
    uint64_t n = 1;
    for (int64_t d : s) {
        if (d == 0) return 0;
    }
    for (int64_t d : s) n *= static_cast<uint64_t>(d);
    return static_cast<int64_t>(n);
}

std::string shape_str(const Shape& s) { return fmt::format("[{}]", fmt::join(s, ",")); }

Buffer::Buffer(size_t bytes) : Buffer(bytes, kUninitialized) {
    std::memset(data_, 0, bytes_);
}

Buffer::Buffer(size_t bytes, Uninitialized) : bytes_(bytes) {
    if (bytes > SIZE_MAX - 63) throw std::bad_alloc();
    size_t rounded = (bytes + 63) / 64 * 64;
    if (rounded == 0) rounded = 64;
    data_ = std::aligned_alloc(64, rounded);
    if (data_ == nullptr) throw std::bad_alloc();
    // The rounding tail is never the caller's to write.
    std::memset(static_cast<char*>(data_) + bytes, 0, rounded - bytes);
}

Buffer::Buffer(void* data, size_t bytes, std::shared_ptr<void> keep)
    : data_(data), bytes_(bytes), owned_(false), keep_(std::move(keep)) {}

Buffer::~Buffer() {
    if (owned_) std::free(data_);
}

Tensor::Tensor(DType dtype, Shape shape) : dtype_(dtype), shape_(std::move(shape)) {
    // A shape whose byte size is negative or does not fit is an allocation that cannot succeed
    // (readers check sizes from files before they get here; this catches computed shapes).
    size_t bytes = dtype_size(dtype);
    bool empty = false;
    for (int64_t d : shape_) {
        if (d < 0) throw std::bad_alloc();
        empty = empty || d == 0;
    }
    // A zero dim makes any other product harmless ([2^40, 2^40, 0] is an empty tensor).
    for (int64_t d : shape_) {
        if (!empty && __builtin_mul_overflow(bytes, static_cast<size_t>(d), &bytes)) {
            throw std::bad_alloc();
        }
    }
    buffer_ = std::make_shared<Buffer>(empty ? 0 : bytes);
}

Tensor::Tensor(DType dtype, Shape shape, std::shared_ptr<Buffer> buffer, size_t offset)
    : dtype_(dtype), shape_(std::move(shape)), buffer_(std::move(buffer)), offset_(offset) {
    LOWBIT_CHECK(buffer_ && offset_ + nbytes() <= buffer_->size(),
                 "tensor view {} {} at offset {} exceeds buffer of {} bytes", dtype_name(dtype_),
                 shape_str(shape_), offset_, buffer_ ? buffer_->size() : 0);
}

Tensor Tensor::reshaped(Shape shape) const {
    LOWBIT_CHECK(shape_numel(shape) == numel(), "reshape {} -> {}", shape_str(shape_),
                 shape_str(shape));
    Tensor t = *this;
    t.shape_ = std::move(shape);
    return t;
}

Tensor Tensor::clone() const {
    // Every byte is copied, so the new buffer skips the zeroing (a 20 MB output cost as much
    // again in memset as in the copy).
    Tensor t(dtype_, shape_, std::make_shared<Buffer>(nbytes(), Buffer::kUninitialized));
    if (nbytes() > 0) std::memcpy(t.raw(), raw(), nbytes());
    return t;
}

double tensor_get_f64(const Tensor& t, int64_t i) {
    const void* p = t.raw();
    switch (t.dtype()) {
        case DType::Float32: return static_cast<const float*>(p)[i];
        case DType::Float64: return static_cast<const double*>(p)[i];
        case DType::Float16: return half_to_float(static_cast<const uint16_t*>(p)[i]);
        case DType::BFloat16: return bfloat16_to_float(static_cast<const uint16_t*>(p)[i]);
        case DType::Float8E4M3FN:
        case DType::Float8E4M3FNUZ:
        case DType::Float8E5M2:
        case DType::Float8E5M2FNUZ:
            return fp8_to_float(static_cast<const uint8_t*>(p)[i], t.dtype());
        case DType::Int8:
        case DType::Int4: return static_cast<const int8_t*>(p)[i];
        case DType::UInt8:
        case DType::UInt4: return static_cast<const uint8_t*>(p)[i];
        case DType::Bool: return static_cast<const uint8_t*>(p)[i] != 0;
        case DType::Int16: return static_cast<const int16_t*>(p)[i];
        case DType::UInt16: return static_cast<const uint16_t*>(p)[i];
        case DType::Int32: return static_cast<const int32_t*>(p)[i];
        case DType::UInt32: return static_cast<const uint32_t*>(p)[i];
        case DType::Int64: return static_cast<double>(static_cast<const int64_t*>(p)[i]);
        case DType::UInt64: return static_cast<double>(static_cast<const uint64_t*>(p)[i]);
        default: LOWBIT_CHECK(false, "tensor_get_f64 on {}", dtype_name(t.dtype()));
    }
    return 0;
}

int64_t tensor_get_i64(const Tensor& t, int64_t i) {
    const void* p = t.raw();
    switch (t.dtype()) {
        case DType::Int64: return static_cast<const int64_t*>(p)[i];
        case DType::Int32: return static_cast<const int32_t*>(p)[i];
        case DType::Int16: return static_cast<const int16_t*>(p)[i];
        case DType::Int8:
        case DType::Int4: return static_cast<const int8_t*>(p)[i];
        case DType::UInt8:
        case DType::UInt4: return static_cast<const uint8_t*>(p)[i];
        case DType::UInt16: return static_cast<const uint16_t*>(p)[i];
        case DType::UInt32: return static_cast<const uint32_t*>(p)[i];
        case DType::UInt64: return static_cast<int64_t>(static_cast<const uint64_t*>(p)[i]);
        case DType::Bool: return static_cast<const uint8_t*>(p)[i] != 0;
        default: return static_cast<int64_t>(tensor_get_f64(t, i));
    }
}

std::vector<int64_t> tensor_to_i64(const Tensor& t) {
    std::vector<int64_t> v(static_cast<size_t>(t.numel()));
    for (int64_t i = 0; i < t.numel(); ++i) v[static_cast<size_t>(i)] = tensor_get_i64(t, i);
    return v;
}

}  // namespace lowbit
