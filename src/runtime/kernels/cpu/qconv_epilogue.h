// The epilogue of the int8 Q/DQ conv step (qconv.cpp): what the float simulation computes after
// the conv, on the conv's float32 sums (already scaled by s_x * s_w[m]):
//   v = acc + bias[m]; [v = v * sigmoid(v)]; [v = v + R  or  v = v + float(r_q) * s_r];
//   then either v stays float32 (in acc) or y = QuantizeLinear(v, s_y) (int8 codes).
// Each step rounds to float32 as the simulation's separate nodes do (the residual's
// dequantization is a multiplication, then an addition: never one fused multiply-add).
//
// Layout: `pixels` NHWC pixels of `channels` values each, the residual (when present) and y
// in the same order. run_reference() is the readable form, one pass per step; run() is one
// AVX-512 pass over the flat array (the bias repeats with period lcm(channels, 16), so every
// vector but the masked last one is full whatever the channel count) and gives the same bits:
// the same float32 operations on each element in the same order.
#pragma once

#include <cstdint>
#include <vector>

namespace lowbit::cpu {

class QConvEpilogue {
public:
    enum class Residual { None, Float, Codes };

    // bias: empty or one value per channel.
    QConvEpilogue(std::vector<float> bias, int64_t channels, bool silu, Residual residual,
                  float r_scale, bool out_q, float y_scale);

    // acc: pixels * channels float32 sums; res: the residual (float32, or int8 codes) for the
    // same elements, or null when there is none; y: the int8 output (out_q only; acc is then
    // clobbered), else the result replaces acc.
    void run(float* acc, int64_t pixels, const void* res, int8_t* y) const;
    void run_reference(float* acc, int64_t pixels, const void* res, int8_t* y) const;

private:
    std::vector<float> bias_;
    std::vector<float> bias_row_;  // bias repeated over lcm(channels, 16) values
    int64_t channels_;
    bool silu_;
    Residual residual_;
    float r_scale_;
    bool out_q_;
    float y_scale_;
};

}  // namespace lowbit::cpu
