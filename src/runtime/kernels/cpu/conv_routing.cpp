#include "runtime/kernels/cpu/conv_routing.h"

#include <algorithm>

namespace lowbit::cpu {

void ConvRouting::reset(int64_t channels) {
    channels_ = channels;
    outs_.clear();
    outs_[0] = {0, channels, true, {}};
    dense_ = true;
}

bool ConvRouting::add_concat_slice(size_t out, size_t slot, int64_t offset, int64_t total) {
    auto it = outs_.find(out);
    if (it == outs_.end()) return false;
    it->second.slices.push_back({out, slot, offset, total});
    return true;
}

bool ConvRouting::add_channel_range(size_t out, size_t slot, int64_t c0, int64_t c1) {
    if (out != 0 || c0 < 0 || c1 > channels_ || c0 >= c1 || outs_.count(slot)) return false;
    outs_[slot] = {c0, c1, true, {}};
    return true;
}

bool ConvRouting::drop_dense(size_t out) {
    auto it = outs_.find(out);
    if (it == outs_.end() || !it->second.dense) return false;
    it->second.dense = false;
    if (out != 0) return false;
    dense_ = false;
    return true;
}

void ConvRouting::copy_rows(const char* result, std::span<Tensor> out, int64_t p0,
                            int64_t pixels, size_t elem) const {
    copy_channel_block(result, channels_, 0, channels_, out, p0, pixels, elem);
}

void ConvRouting::copy_channel_block(const char* result, int64_t stride, int64_t c0, int64_t c1,
                                     std::span<Tensor> out, int64_t p0, int64_t pixels,
                                     size_t elem) const {
    const auto e = static_cast<int64_t>(elem);
    for (const auto& [k, spec] : outs_) {
        // The channels this destination shares with the result, relative to its own first.
        const int64_t lo = std::max(spec.c0, c0), hi = std::min(spec.c1, c1);
        if (lo >= hi) continue;
        const char* from = result + (lo - c0) * e;
        const int64_t width = spec.c1 - spec.c0;
        const int64_t skip = lo - spec.c0;
        if (k != 0 && spec.dense) {
            copy_channel_rows(from, stride,
                              static_cast<char*>(out[k].raw()) + (p0 * width + skip) * e, width,
                              pixels, hi - lo, elem);
        }
        for (const ConcatSlice& sl : spec.slices) {
            char* d =
                static_cast<char*>(out[sl.slot].raw()) + (p0 * sl.total + sl.offset + skip) * e;
            copy_channel_rows(from, stride, d, sl.total, pixels, hi - lo, elem);
        }
    }
}

std::string ConvRouting::suffix() const {
    std::string s = outs_.size() > 1 ? " +split" : "";
    for (const auto& [k, spec] : outs_) {
        if (!spec.slices.empty()) return s + (dense_ ? " +concat" : " >concat");
    }
    return s;
}

}  // namespace lowbit::cpu
