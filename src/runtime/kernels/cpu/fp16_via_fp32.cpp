// Fast ops for nodes with float16 operands whose fast kernel is float32-only (Conv, MatMul,
// Softmax, MaxPool, Resize): the float32 op on widened copies of the float16 inputs, its float32
// outputs rounded to float16 (nearest even). That is what ONNX Runtime's CPU provider does with
// the Casts it inserts, and what the reference path does (kernels/fp16_fallback.h). A fused Conv
// (+SiLU, +residual Add) rounds once, at the fused output, as ORT does for a chain of nodes it
// runs in float32. Conversions are elementwise, so they work in any storage layout; scratch
// tensors and the float32 copies of float16 constants are made at plan time.
#include <algorithm>

#include "core/half.h"
#include "runtime/kernels/cpu/ops.h"

namespace lowbit::cpu {
namespace {

// How input i reaches the float32 op: as is, widened into scratch each run, or as the float32
// copy of a float16 constant made at plan time.
enum class InputKind { Pass, Convert, Constant };

class Float16ViaFloat32Op final : public FastOp {
public:
    Float16ViaFloat32Op(std::unique_ptr<FastOp> inner, std::vector<InputKind> kinds,
                        std::vector<Tensor> in, std::vector<bool> round_out,
                        std::vector<Tensor> out)
        : inner_(std::move(inner)),
          kinds_(std::move(kinds)),
          in_(std::move(in)),
          round_out_(std::move(round_out)),
          out_(std::move(out)) {}

    Status run(std::span<const Tensor> inputs, std::span<Tensor> outputs,
               const ThreadPool& pool) override {
        for (size_t i = 0; i < in_.size(); ++i) {
            if (kinds_[i] == InputKind::Convert) {
                const uint16_t* src = inputs[i].data<uint16_t>();
                float* dst = in_[i].data<float>();
                const int64_t n = inputs[i].numel();
                for (int64_t k = 0; k < n; ++k) dst[k] = half_to_float(src[k]);
            } else if (kinds_[i] == InputKind::Pass) {
                in_[i] = inputs[i];  // shares the buffer
            }
        }
        for (size_t o = 0; o < out_.size(); ++o) {
            if (!round_out_[o] || outputs[o].empty()) out_[o] = outputs[o];
        }
        LOWBIT_TRY(inner_->run(in_, out_, pool));
        for (size_t o = 0; o < out_.size(); ++o) {
            if (!round_out_[o] || outputs[o].empty()) continue;
            const float* src = out_[o].data<float>();
            uint16_t* dst = outputs[o].data<uint16_t>();
            const int64_t n = out_[o].numel();
            for (int64_t k = 0; k < n; ++k) dst[k] = float_to_half(src[k]);
        }
        return Status::ok();
    }

    std::string describe() const override { return inner_->describe() + " (fp16 via fp32)"; }

private:
    std::unique_ptr<FastOp> inner_;
    std::vector<InputKind> kinds_;
    std::vector<Tensor> in_;
    std::vector<bool> round_out_;
    std::vector<Tensor> out_;
};

}  // namespace

bool is_float32_only_fast_op(const std::string& op_type) {
    return op_type == "Conv" || op_type == "MatMul" || op_type == "Softmax" ||
           op_type == "MaxPool" || op_type == "Resize";
}

FastPlan choose_via_float32(
    std::span<const Operand> ins, std::span<const Operand> outs,
    const std::function<FastPlan(std::span<const Operand>, std::span<const Operand>)>& choose32) {
    std::vector<Operand> ins32(ins.begin(), ins.end()), outs32(outs.begin(), outs.end());
    std::vector<InputKind> kinds(ins.size(), InputKind::Pass);
    std::vector<Tensor> in(ins.size());
    for (size_t i = 0; i < ins.size(); ++i) {
        if (ins[i].dtype != DType::Float16) continue;
        ins32[i].dtype = DType::Float32;
        in[i] = Tensor(DType::Float32, ins[i].shape);
        if (ins[i].constant != nullptr) {
            const uint16_t* src = ins[i].constant->data<uint16_t>();
            float* dst = in[i].data<float>();
            for (int64_t k = 0; k < in[i].numel(); ++k) dst[k] = half_to_float(src[k]);
            kinds[i] = InputKind::Constant;
            ins32[i].constant = &in[i];  // stays valid: the op takes `in` by move
        } else {
            kinds[i] = InputKind::Convert;
        }
    }
    std::vector<bool> round_out(outs.size(), false);
    std::vector<Tensor> out(outs.size());
    for (size_t o = 0; o < outs.size(); ++o) {
        if (outs[o].dtype != DType::Float16) continue;
        outs32[o].dtype = DType::Float32;
        round_out[o] = true;
        out[o] = Tensor(DType::Float32, outs[o].shape);
    }
    FastPlan p = choose32(ins32, outs32);
    if (p.op) {
        p.op = std::make_unique<Float16ViaFloat32Op>(
            std::move(p.op), std::move(kinds), std::move(in), std::move(round_out), std::move(out));
    }
    return p;
}

}  // namespace lowbit::cpu
