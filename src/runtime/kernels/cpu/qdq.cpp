// QuantizeLinear float32 -> int8 and DequantizeLinear int8 -> float32 with a per-tensor
// constant scale and a zero point of 0 (what `lowbit quantize` writes for activations), in any
// layout (elementwise), vectorized and split over the pool. Bit-identical to the reference
// kernels (qdq_math.h).
#include <fmt/format.h>

#include <algorithm>

#include "runtime/kernels/cpu/ops.h"
#include "runtime/kernels/cpu/qdq_math.h"

namespace lowbit::cpu {
namespace {

constexpr int64_t kGrain = 1 << 14;

class QdqOp final : public FastOp {
public:
    QdqOp(bool quantize, float scale, Shape shape)
        : quantize_(quantize), scale_(scale), shape_(std::move(shape)) {}

    Status run(std::span<const Tensor> in, std::span<Tensor> out, const ThreadPool& pool) override {
        const int64_t n = out[0].numel();
        if (to_nhwc_) {
            quantize_to_nhwc(in[0].data<float>(), out[0].data<int8_t>(), pool);
        } else if (quantize_) {
            const float* x = in[0].data<float>();
            int8_t* y = out[0].data<int8_t>();
            pool.parallel_for(
                n, kGrain, [&](int64_t b, int64_t e) { quantize_s8(x + b, y + b, e - b, scale_); });
        } else {
            const int8_t* x = in[0].data<int8_t>();
            float* y = out[0].data<float>();
            pool.parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
                dequantize_s8(x + b, y + b, e - b, scale_);
            });
        }
        return Status::ok();
    }
    std::string describe() const override {
        return quantize_ ? (to_nhwc_ ? "QuantizeLinear int8 per-tensor plain->nhwc"
                                     : "QuantizeLinear int8 per-tensor")
                         : "DequantizeLinear int8 per-tensor";
    }

    // A 4-D QuantizeLinear of a plain input may write its codes channels-last (the input
    // image's quantization: one pass instead of a quantization and an int8 reorder).
    bool write_output_nhwc() override {
        if (!quantize_ || shape_.size() != 4) return false;
        to_nhwc_ = true;
        return true;
    }

private:
    // Blocks of kPix pixels: each channel's run quantized into a stack buffer, then
    // interleaved; same arithmetic as quantize_s8 on the whole tensor. With AVX-512 (BW, VL),
    // tiles of 16 channels x 16 pixels instead (quantize_to_nhwc_tiles).
    void quantize_to_nhwc(const float* x, int8_t* y, const ThreadPool& pool) const {
        constexpr int64_t kPix = 256, kMaxC = 16;
        const int64_t c = shape_[1], hw = shape_[2] * shape_[3];
#if defined(__AVX512VBMI__)
        if (c == 3) return quantize_rgb_to_nhwc(x, y, pool);
#endif
#if defined(__AVX512BW__) && defined(__AVX512VL__)
        if (c >= 8) return quantize_to_nhwc_tiles(x, y, pool);
#endif
        const int64_t blocks = (hw + kPix - 1) / kPix;
        pool.parallel_for(shape_[0] * blocks, std::max<int64_t>(1, kGrain / (kPix * c)),
                          [&](int64_t b0, int64_t b1) {
            int8_t tmp[kMaxC * kPix];
            for (int64_t t = b0; t < b1; ++t) {
                const int64_t img = t / blocks;
                const int64_t p0 = (t % blocks) * kPix;
                const int64_t np = std::min(kPix, hw - p0);
                const float* xi = x + img * c * hw;
                int8_t* yi = y + (img * hw + p0) * c;
                for (int64_t c0 = 0; c0 < c; c0 += kMaxC) {
                    const int64_t nc = std::min(kMaxC, c - c0);
                    for (int64_t ch = 0; ch < nc; ++ch) {
                        quantize_s8(xi + (c0 + ch) * hw + p0, tmp + ch * kPix, np, scale_);
                    }
                    for (int64_t p = 0; p < np; ++p) {
                        for (int64_t ch = 0; ch < nc; ++ch) yi[p * c + c0 + ch] = tmp[ch * kPix + p];
                    }
                }
            }
        });
    }

#if defined(__AVX512BW__) && defined(__AVX512VL__)
    // 16 x 16 bytes: r[i] byte j -> r[j] byte i, by four rounds of interleaving (bytes, pairs,
    // quads, halves).
    static void transpose16x16_s8(__m128i r[16]) {
        __m128i t[16];
        for (int i = 0; i < 16; i += 2) {
            t[i] = _mm_unpacklo_epi8(r[i], r[i + 1]);
            t[i + 1] = _mm_unpackhi_epi8(r[i], r[i + 1]);
        }
        // t[2k], t[2k+1]: rows 2k, 2k+1, columns 0-7 and 8-15, as byte pairs.
        __m128i u[16];
        for (int g = 0; g < 16; g += 4) {
            u[g] = _mm_unpacklo_epi16(t[g], t[g + 2]);
            u[g + 1] = _mm_unpackhi_epi16(t[g], t[g + 2]);
            u[g + 2] = _mm_unpacklo_epi16(t[g + 1], t[g + 3]);
            u[g + 3] = _mm_unpackhi_epi16(t[g + 1], t[g + 3]);
        }
        // u[4q + k]: rows 4q..4q+3, columns 4k..4k+3, as 4-byte groups.
        __m128i v[16];
        for (int h = 0; h < 2; ++h) {  // rows 0-7, rows 8-15
            for (int k = 0; k < 4; ++k) {
                v[8 * h + 2 * k] = _mm_unpacklo_epi32(u[8 * h + k], u[8 * h + 4 + k]);
                v[8 * h + 2 * k + 1] = _mm_unpackhi_epi32(u[8 * h + k], u[8 * h + 4 + k]);
            }
        }
        // v[8h + m]: rows 8h..8h+7, columns 2m, 2m+1, as 8-byte groups.
        for (int m = 0; m < 8; ++m) {
            r[2 * m] = _mm_unpacklo_epi64(v[m], v[8 + m]);
            r[2 * m + 1] = _mm_unpackhi_epi64(v[m], v[8 + m]);
        }
    }

    // Tiles of 16 channels x 16 pixels: each channel's 16 values quantized as quantize_s8 does
    // (quantize16_s32), the 16 x 16 codes transposed in registers, each pixel's channels
    // stored at once. Channel and pixel tails load and store under masks.
    void quantize_to_nhwc_tiles(const float* x, int8_t* y, const ThreadPool& pool) const {
        const int64_t c = shape_[1], hw = shape_[2] * shape_[3];
        const int64_t tiles = (hw + 15) / 16;
        const QScale16 vs(scale_);
        pool.parallel_for(
            shape_[0] * tiles, std::max<int64_t>(1, kGrain / (16 * c)),
            [&](int64_t t0, int64_t t1) {
                __m128i r[16];
                for (int64_t t = t0; t < t1; ++t) {
                    const int64_t img = t / tiles;
                    const int64_t p0 = (t % tiles) * 16;
                    const int64_t np = std::min<int64_t>(16, hw - p0);
                    const __mmask16 pm = np == 16 ? __mmask16(0xffff) : __mmask16((1u << np) - 1);
                    const float* xi = x + img * c * hw + p0;
                    int8_t* yi = y + (img * hw + p0) * c;
                    for (int64_t c0 = 0; c0 < c; c0 += 16) {
                        const int64_t nc = std::min<int64_t>(16, c - c0);
                        for (int64_t ch = 0; ch < 16; ++ch) {
                            r[ch] = ch < nc
                                        ? _mm512_cvtsepi32_epi8(quantize16_s32(
                                              _mm512_maskz_loadu_ps(pm, xi + (c0 + ch) * hw), vs))
                                        : _mm_setzero_si128();
                        }
                        transpose16x16_s8(r);
                        const __mmask16 cm =
                            nc == 16 ? __mmask16(0xffff) : __mmask16((1u << nc) - 1);
                        for (int64_t p = 0; p < np; ++p)
                            _mm_mask_storeu_epi8(yi + p * c + c0, cm, r[p]);
                    }
                }
            });
    }
#endif

#if defined(__AVX512VBMI__)
    // Three channels (an RGB image, the usual model input): 16 pixels at a time, each plane's
    // 16 codes into one quarter of a register, then one byte permute interleaves them into the
    // 48 bytes of 16 NHWC pixels.
    void quantize_rgb_to_nhwc(const float* x, int8_t* y, const ThreadPool& pool) const {
        const int64_t hw = shape_[2] * shape_[3];
        alignas(64) int8_t order[64] = {};
        for (int j = 0; j < 48; ++j) order[j] = static_cast<int8_t>((j % 3) * 16 + j / 3);
        const __m512i perm = _mm512_load_si512(order);
        const QScale16 vs(scale_);
        pool.parallel_for(shape_[0] * hw, kGrain, [&](int64_t b, int64_t e) {
            auto codes = [&](const float* plane, __mmask16 m) {
                return _mm512_cvtsepi32_epi8(quantize16_s32(_mm512_maskz_loadu_ps(m, plane), vs));
            };
            for (int64_t p = b; p < e;) {
                const int64_t img = p / hw, px = p % hw;
                // A short step at the end of the range or of an image (the planes restart there).
                const int64_t np = std::min({int64_t{16}, e - p, hw - px});
                const __mmask16 m = np == 16 ? __mmask16(0xffff) : __mmask16((1u << np) - 1);
                const float* xi = x + img * 3 * hw + px;
                __m512i z = _mm512_castsi128_si512(codes(xi, m));
                z = _mm512_inserti32x4(z, codes(xi + hw, m), 1);
                z = _mm512_inserti32x4(z, codes(xi + 2 * hw, m), 2);
                const __mmask64 out_m = (__mmask64(1) << (3 * np)) - 1;
                _mm512_mask_storeu_epi8(y + p * 3, out_m, _mm512_permutexvar_epi8(perm, z));
                p += np;
            }
        });
    }
#endif

    bool quantize_;
    float scale_;
    Shape shape_;
    bool to_nhwc_ = false;
};

// A constant scalar float32 scale (> 0 for Q) and an int8 zero point that is 0.
bool per_tensor_s8(std::span<const Operand> ins, float* scale) {
    if (ins.size() < 3 || !ins[1].constant || ins[1].dtype != DType::Float32 ||
        shape_numel(ins[1].shape) != 1 || !ins[2].constant || ins[2].dtype != DType::Int8 ||
        shape_numel(ins[2].shape) != 1 || ins[2].constant->data<int8_t>()[0] != 0) {
        return false;
    }
    *scale = ins[1].constant->data<float>()[0];
    return std::isfinite(*scale) && *scale > 0.0f;
}

}  // namespace

std::unique_ptr<FastOp> make_qdq_int8(const Node& node, std::span<const Operand> ins,
                                      const Operand& out) {
    const bool q = node.op_type == "QuantizeLinear";
    float scale = 0;
    if (!per_tensor_s8(ins, &scale) || ins[0].shape != out.shape) return nullptr;
    if (q ? (ins[0].dtype != DType::Float32 || out.dtype != DType::Int8)
          : (ins[0].dtype != DType::Int8 || out.dtype != DType::Float32)) {
        return nullptr;
    }
    if (node.attr_int("block_size", 0) != 0) return nullptr;
    return std::make_unique<QdqOp>(q, scale, out.shape);
}

}  // namespace lowbit::cpu
