// Direct depthwise int8 conv sums (AVX-512): the part of qconv.cpp's step that oneDNN's
// jit_int8 depthwise kernel did more slowly than oneDNN's float32 depthwise kernel did the whole
// float32 conv (bias and SiLU included) on the bundled YOLOv10m (where and by how much is in
// qconv_dw.cpp).
//
// Exact in float32: the input codes are widened once to float32 (a per-thread buffer of the
// chunk's input rows, padded with 0.0 on every side), the weights' codes are float32 too, and
// each output channel's taps are summed with fused multiply-adds, 16 channels a vector. Every
// product is an integer of magnitude at most 128 * 128 = 2^14 and every partial sum of at most
// 64 of them below 2^20, so all of them are exact in float32 (24-bit significand) in any order:
// the float32 sum is the int32 sum. It is then multiplied by its channel's output scale, one
// rounding, as oneDNN's int8 kernels do after converting their int32 sums, so the results are
// the same bits (kernels_qconv_direct_test checks them against an integer reference, and
// test_lowp_kernels.py the bundled model against oneDNN's kernels).
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/kernels/cpu/ops.h"

namespace lowbit::cpu {

class DirectInt8Dw {
public:
    // x: the input shape [N, C, H, W] (stored NHWC); w: the weights' codes [C, 1, kh, kw] (int8,
    // or int4 held a byte each); scales: one per channel. False when the conv is dilated or
    // strided, has more than kMaxTaps taps (qconv_dw.cpp), or the build has no AVX-512: the
    // caller keeps oneDNN's kernel then.
    bool init(const Shape& x, const int8_t* w, const Window& h, const Window& wd,
              const std::vector<float>& scales);

    // Bytes of the per-thread buffer for a chunk of `rows` output rows.
    size_t scratch_bytes(int64_t rows) const;

    // The float32 sums of output rows [oh0, oh1) of one image (x: its NHWC codes), channels
    // [oc0, oc1) (oc0 a multiple of 16), written densely: pixel p's channel c at
    // out[p * (oc1 - oc0) + c - oc0]. scratch: scratch_bytes(oh1 - oh0) bytes.
    void run(const int8_t* x, int64_t oh0, int64_t oh1, int64_t oc0, int64_t oc1, float* out,
             void* scratch) const;

private:
    int64_t c_ = 0;       // channels
    int64_t blocks_ = 0;  // channel blocks of 16
    Window h_, w_;        // rows and columns: input and output sizes, window, padding
    int64_t cols_ = 0;    // padded row width in pixels
    struct alignas(64) Lanes {
        float v[16];
    };
    std::vector<Lanes> wpack_;  // [tap][block]: the codes as float32 (0 past the channels)
    std::vector<Lanes> scale_;  // [block]
};

}  // namespace lowbit::cpu
