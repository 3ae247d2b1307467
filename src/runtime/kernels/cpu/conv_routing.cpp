#include "runtime/kernels/cpu/conv_routing.h"

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
    const auto e = static_cast<int64_t>(elem);
    for (const auto& [k, spec] : outs_) {
        const char* from = result + spec.c0 * e;
        const int64_t width = spec.c1 - spec.c0;
        if (k != 0 && spec.dense) {
            copy_channel_rows(from, channels_, static_cast<char*>(out[k].raw()) + p0 * width * e,
                              width, pixels, width, elem);
        }
        for (const ConcatSlice& sl : spec.slices) {
            char* d = static_cast<char*>(out[sl.slot].raw()) + (p0 * sl.total + sl.offset) * e;
            copy_channel_rows(from, channels_, d, sl.total, pixels, width, elem);
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
