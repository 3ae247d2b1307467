// QuantizeLinear float32 -> float8e4m3fn and DequantizeLinear float8e4m3fn -> float32 with a
// per-tensor constant scale and a zero point of 0 (what `lowbit quantize --mode fp8` writes for
// activations), in any layout (elementwise), vectorized and split over the pool. Bit-identical
// to the reference kernels (fp8_math.h).
#include <cmath>
#include <cstring>

#include "runtime/kernels/cpu/fp8_math.h"
#include "runtime/kernels/cpu/ops.h"

namespace lowbit::cpu {
namespace {

constexpr int64_t kGrain = 1 << 14;

class QdqFp8Op final : public FastOp {
public:
    QdqFp8Op(bool quantize, float scale, bool saturate)
        : quantize_(quantize), saturate_(saturate), scale_(scale) {}

    Status run(std::span<const Tensor> in, std::span<Tensor> out, const ThreadPool& pool) override {
        const int64_t n = out[0].numel();
        if (quantize_) {
            const float* x = in[0].data<float>();
            auto* y = static_cast<uint8_t*>(out[0].raw());
            pool.parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
                quantize_e4m3(x + b, y + b, e - b, scale_, saturate_);
            });
        } else {
            const auto* x = static_cast<const uint8_t*>(in[0].raw());
            float* y = out[0].data<float>();
            pool.parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
                dequantize_e4m3(x + b, y + b, e - b, scale_);
            });
        }
        return Status::ok();
    }
    std::string describe() const override {
        return quantize_ ? "QuantizeLinear fp8 per-tensor" : "DequantizeLinear fp8 per-tensor";
    }

private:
    bool quantize_, saturate_;
    float scale_;
};

}  // namespace

std::unique_ptr<FastOp> make_qdq_fp8(const Node& node, std::span<const Operand> ins,
                                     const Operand& out) {
    constexpr DType kF8 = DType::Float8E4M3FN;
    const bool q = node.op_type == "QuantizeLinear";
    // A constant scalar float32 scale and a float8e4m3fn zero point that is +0.
    if (ins.size() < 3 || !ins[1].constant || ins[1].dtype != DType::Float32 ||
        shape_numel(ins[1].shape) != 1 || !ins[2].constant || ins[2].dtype != kF8 ||
        shape_numel(ins[2].shape) != 1 ||
        static_cast<const uint8_t*>(ins[2].constant->raw())[0] != 0 || ins[0].shape != out.shape) {
        return nullptr;
    }
    const float scale = ins[1].constant->data<float>()[0];
    if (!std::isfinite(scale) || scale <= 0.0f) return nullptr;
    if (q ? (ins[0].dtype != DType::Float32 || out.dtype != kF8)
          : (ins[0].dtype != kF8 || out.dtype != DType::Float32)) {
        return nullptr;
    }
    if (node.attr_int("block_size", 0) != 0) return nullptr;
    return std::make_unique<QdqFp8Op>(q, scale, node.attr_int("saturate", 1) != 0);
}

}  // namespace lowbit::cpu
