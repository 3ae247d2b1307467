// Activation layouts. Tensors always carry their ONNX (logical) shape; a tensor "stored NHWC"
// has a 4-D logical shape [N, C, H, W] whose bytes are ordered [N, H, W, C] (channels-last,
// oneDNN's `acdb`). The optimized CPU path keeps conv activations channels-last between layers
// so that no layer pays a reorder (research/engine-perf.md, "Layout"); everything that leaves
// the executor (graph outputs, observer and override views) is plain ONNX order.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/tensor.h"
#include "core/thread_pool.h"

namespace lowbit {

enum class Layout : uint8_t {
    Plain,  // row-major in ONNX order (NCHW for 4-D activations)
    Nhwc,   // 4-D only: [N, C, H, W] stored as [N, H, W, C]
};

const char* layout_name(Layout l);

// Whether a tensor of `shape` has the same bytes in plain and NHWC order: a 4-D [N, C, H, W]
// with H = W = 1 (both orders index n * C + c) or C = 1 (both index (n * H + h) * W + w).
// A layout change of such a tensor copies nothing.
bool same_bytes_in_layouts(const Shape& shape);

// [N, C, HW] -> [N, HW, C] and back, for elements of `elem` bytes (1, 2, 4 or 8).
// src and dst must not overlap.
void reorder_nchw_to_nhwc(const void* src, void* dst, int64_t n, int64_t c, int64_t hw, size_t elem,
                          const ThreadPool& pool);
void reorder_nhwc_to_nchw(const void* src, void* dst, int64_t n, int64_t c, int64_t hw, size_t elem,
                          const ThreadPool& pool);

// Copies the 4-D tensor `src` stored in layout `from` into `dst` (same dtype and logical shape,
// already allocated) stored in layout `to`. Same layouts: a plain copy.
void convert_layout(const Tensor& src, Layout from, Tensor& dst, Layout to, const ThreadPool& pool);

}  // namespace lowbit
