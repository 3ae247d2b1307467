// The weight preparation the two ConvTranspose kernels share (deconv.cpp, deconv_taps.cpp).
#pragma once

#include <cstdint>
#include <vector>

namespace lowbit::cpu {

// ConvTranspose weights (ONNX [C, M/group, kH, kW], `taps` = kH * kW values per pair) with
// each output channel's taps multiplied by a folded BatchNormalization's scale: input channel
// ic and column j feed output channel (ic / (C / group)) * (M / group) + j. Returns `w` itself
// when `scale` is empty (no BatchNormalization), else the scaled copy held in `storage`.
inline const float* bn_scaled_deconv_weights(const float* w, int64_t c_in, int64_t m_g,
                                             int64_t group, int64_t taps,
                                             const std::vector<float>& scale,
                                             std::vector<float>& storage) {
    if (scale.empty()) return w;
    const int64_t c_g = c_in / group;
    storage.resize(static_cast<size_t>(c_in * m_g * taps));
    for (int64_t ic = 0; ic < c_in; ++ic) {
        for (int64_t j = 0; j < m_g; ++j) {
            const float a = scale[static_cast<size_t>(ic / c_g * m_g + j)];
            const int64_t base = (ic * m_g + j) * taps;
            for (int64_t t = 0; t < taps; ++t) {
                storage[static_cast<size_t>(base + t)] = w[base + t] * a;
            }
        }
    }
    return storage.data();
}

}  // namespace lowbit::cpu
