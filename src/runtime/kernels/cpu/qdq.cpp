// QuantizeLinear float32 -> int8 and DequantizeLinear int8 -> float32 with a per-tensor
// constant scale and a zero point of 0 (what `lowbit quantize` writes for activations), in any
// layout (elementwise), vectorized and split over the pool. Bit-identical to the reference
// kernels (qdq_math.h).
#include <fmt/format.h>

#include "runtime/kernels/cpu/ops.h"
#include "runtime/kernels/cpu/qdq_math.h"

namespace lowbit::cpu {
namespace {

constexpr int64_t kGrain = 1 << 14;

class QdqOp final : public FastOp {
public:
    QdqOp(bool quantize, float scale) : quantize_(quantize), scale_(scale) {}

    Status run(std::span<const Tensor> in, std::span<Tensor> out, const ThreadPool& pool) override {
        const int64_t n = out[0].numel();
        if (quantize_) {
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
        return quantize_ ? "QuantizeLinear int8 per-tensor" : "DequantizeLinear int8 per-tensor";
    }

private:
    bool quantize_;
    float scale_;
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
    return std::make_unique<QdqOp>(q, scale);
}

}  // namespace lowbit::cpu
