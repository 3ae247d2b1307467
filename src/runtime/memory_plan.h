// Static memory planning: assigns each tensor an offset in one arena so that tensors whose
// lifetimes overlap never share bytes, and dead tensors' memory is reused.
#pragma once

#include <cstddef>
#include <vector>

namespace lowbit {

struct MemoryRequest {
    size_t bytes;
    int first_step;  // step that writes it (-1: before the first step, e.g. graph inputs)
    int last_step;   // last step that reads it (inclusive)
};

struct MemorySlot {
    size_t offset;
};

// Greedy by size (largest first), each placed at the lowest 64-byte aligned offset that does
// not overlap a placed tensor with an intersecting lifetime. Returns one slot per request and
// the arena size in *total_bytes.
std::vector<MemorySlot> plan_memory(const std::vector<MemoryRequest>& reqs, size_t* total_bytes);

}  // namespace lowbit
