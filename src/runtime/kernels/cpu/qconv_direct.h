// Direct int8 conv sums for narrow convs (AVX-512 VNNI): the part of qconv.cpp's step that
// oneDNN's kernels did more slowly on the bundled YOLOv10m's narrow layers (per-step paired
// profiles; where and by how much is with the limits in qconv_direct.cpp).
//
// Layout: the input is NHWC int8 codes; one output pixel's taps along a kernel row are
// kw * C consecutive bytes, so a pixel's sum is a dot product of kh runs of kw * C bytes (each
// rounded up to whole 4-byte groups) with the weights laid out the same way. vpdpbusd multiplies
// 4 unsigned bytes by 4 signed bytes per int32 lane: the input rows are copied once into a
// padded per-thread buffer as unsigned bytes (code + 128, padding 128 = code 0), each 4-byte
// group of a pixel's run is broadcast to all lanes, and the lanes are output channels (16 a
// vector). The sums are exact in int32; 128 * (the channel's weight sum) is subtracted, and each
// sum becomes float32 times its channel's output scale: one conversion and one product, as
// oneDNN's int8 kernels do, so the float32 sums are the same bits as theirs
// (kernels_qconv_direct_test checks both against an integer reference).
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/kernels/cpu/ops.h"

namespace lowbit::cpu {

class DirectInt8Conv {
public:
    // x: the input shape [N, C, H, W] (stored NHWC); m: output channels; w: the weights' codes,
    // [m, C, kh, kw] (oihw, int8 or int4 held a byte each); scales: one per output channel.
    // False when the conv is not one this kernel measured faster on (the limits in
    // qconv_direct.cpp: output channels, taps, map size, lanes used), is dilated, or the build
    // has no VNNI: the caller keeps oneDNN's kernel then. versus_amx: oneDNN's kernel for the
    // conv is an AMX one (the limits are tighter against it).
    bool init(const Shape& x, int64_t m, const int8_t* w, const Window& h, const Window& wd,
              const std::vector<float>& scales, bool versus_amx);

    // Bytes of the per-thread buffer for a chunk of `rows` output rows.
    size_t scratch_bytes(int64_t rows) const;

    // The float32 sums of output rows [oh0, oh1) of one image (x: its NHWC codes), output
    // channels [oc0, oc1) (oc0 a multiple of 16), written densely: pixel p's channel c at
    // out[p * (oc1 - oc0) + c - oc0]. scratch: scratch_bytes(oh1 - oh0) bytes.
    void run(const int8_t* x, int64_t oh0, int64_t oh1, int64_t oc0, int64_t oc1, float* out,
             uint8_t* scratch) const;

private:
    int64_t c_ = 0;          // input channels
    Window h_, w_;           // rows and columns: input and output sizes, window, padding
    int64_t run_bytes_ = 0;  // kw * C rounded up to a multiple of 4
    int64_t row_bytes_ = 0;  // padded row stride in bytes
    int64_t blocks_ = 0;     // output channel blocks of 16
    struct alignas(64) Lanes {
        int32_t v[16];
    };
    std::vector<Lanes> wpack_;  // [group][block]: 4 weight bytes a lane (output channel)
    std::vector<Lanes> comp_;   // [block]: 128 * the channel's weight sum
    std::vector<Lanes> scale_;  // [block]: the output scales' bits
};

}  // namespace lowbit::cpu
