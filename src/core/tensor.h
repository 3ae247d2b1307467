// Tensor: dtype + shape (ONNX order, outermost first) + a shared, 64-byte aligned buffer.
// Copying a Tensor shares the buffer; clone() copies the bytes.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace lowbit {

using Shape = std::vector<int64_t>;

// Product of the dims (1 for a scalar shape {}).
int64_t shape_numel(const Shape& s);
// "[1,3,640,640]"
std::string shape_str(const Shape& s);

// A 64-byte aligned byte buffer. Memory is zero-initialised, except the first `bytes` of a
// Buffer made with Buffer::kUninitialized (for a caller that writes them all at once).
class Buffer {
public:
    struct Uninitialized {};
    static constexpr Uninitialized kUninitialized{};
    explicit Buffer(size_t bytes);
    Buffer(size_t bytes, Uninitialized);
    // Wraps memory owned elsewhere (e.g. an arena slot); `keep` keeps the owner alive.
    Buffer(void* data, size_t bytes, std::shared_ptr<void> keep);
    ~Buffer();
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;

    void* data() { return data_; }
    const void* data() const { return data_; }
    size_t size() const { return bytes_; }

private:
    void* data_ = nullptr;
    size_t bytes_ = 0;
    bool owned_ = true;
    std::shared_ptr<void> keep_;
};

class Tensor {
public:
    Tensor() = default;
    // Allocates a zeroed tensor.
    Tensor(DType dtype, Shape shape);
    // Views `bytes` of an existing buffer at `offset` (no copy).
    Tensor(DType dtype, Shape shape, std::shared_ptr<Buffer> buffer, size_t offset = 0);

    DType dtype() const { return dtype_; }
    const Shape& shape() const { return shape_; }
    int64_t dim(size_t i) const { return shape_[i]; }
    size_t rank() const { return shape_.size(); }
    int64_t numel() const { return shape_numel(shape_); }
    size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
    bool empty() const { return buffer_ == nullptr; }

    void* raw() { return buffer_ ? static_cast<char*>(buffer_->data()) + offset_ : nullptr; }
    const void* raw() const {
        return buffer_ ? static_cast<const char*>(buffer_->data()) + offset_ : nullptr;
    }
    template <typename T>
    T* data() {
        return static_cast<T*>(raw());
    }
    template <typename T>
    const T* data() const {
        return static_cast<const T*>(raw());
    }
    template <typename T>
    std::span<T> span() {
        return {data<T>(), static_cast<size_t>(numel())};
    }
    template <typename T>
    std::span<const T> span() const {
        return {data<T>(), static_cast<size_t>(numel())};
    }

    // Same bytes, new shape (numel must match; checked).
    Tensor reshaped(Shape shape) const;
    // Deep copy.
    Tensor clone() const;
    const std::shared_ptr<Buffer>& buffer() const { return buffer_; }
    size_t offset() const { return offset_; }

    // Builds a tensor from values (for tests and small constants).
    template <typename T>
    static Tensor from_vector(DType dtype, Shape shape, const std::vector<T>& values) {
        Tensor t(dtype, std::move(shape));
        // memcpy from an empty vector's null data() is undefined even for 0 bytes.
        if (t.nbytes() > 0) std::memcpy(t.raw(), values.data(), t.nbytes());
        return t;
    }

private:
    DType dtype_ = DType::Undefined;
    Shape shape_;
    std::shared_ptr<Buffer> buffer_;
    size_t offset_ = 0;
};

// Reads element i of a numeric tensor as double / int64 (any integer, float or bool dtype,
// including float16/bfloat16/fp8). For shape tensors and tests, not for hot loops.
double tensor_get_f64(const Tensor& t, int64_t i);
int64_t tensor_get_i64(const Tensor& t, int64_t i);
// The whole tensor as int64 values (for Reshape/Slice/... parameter tensors).
std::vector<int64_t> tensor_to_i64(const Tensor& t);

}  // namespace lowbit
