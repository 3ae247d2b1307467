#include "runtime/memory_plan.h"

#include <algorithm>
#include <numeric>

namespace lowbit {

std::vector<MemorySlot> plan_memory(const std::vector<MemoryRequest>& reqs, size_t* total_bytes) {
    constexpr size_t kAlign = 64;
    std::vector<size_t> idx(reqs.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(),
                     [&](size_t a, size_t b) { return reqs[a].bytes > reqs[b].bytes; });
    std::vector<MemorySlot> slots(reqs.size(), MemorySlot{0});
    struct Placed {
        size_t offset, end;
        int first, last;
    };
    std::vector<Placed> placed;
    size_t total = 0;
    for (size_t i : idx) {
        const MemoryRequest& r = reqs[i];
        const size_t size = std::max<size_t>((r.bytes + kAlign - 1) / kAlign * kAlign, kAlign);
        // Intervals already taken during r's lifetime, by offset.
        std::vector<std::pair<size_t, size_t>> busy;
        for (const Placed& p : placed) {
            if (p.first <= r.last_step && r.first_step <= p.last) busy.emplace_back(p.offset, p.end);
        }
        std::sort(busy.begin(), busy.end());
        size_t offset = 0;
        for (const auto& [b, e] : busy) {
            if (offset + size <= b) break;
            offset = std::max(offset, e);
        }
        slots[i].offset = offset;
        placed.push_back({offset, offset + size, r.first_step, r.last_step});
        total = std::max(total, offset + size);
    }
    *total_bytes = total;
    return slots;
}

}  // namespace lowbit
