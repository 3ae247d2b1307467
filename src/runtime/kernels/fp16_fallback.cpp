#include "runtime/kernels/fp16_fallback.h"

#include <vector>

#include "core/half.h"
#include "core/thread_pool.h"

namespace lowbit {
namespace {

constexpr int64_t kGrain = 1 << 15;

void half_to_float_n(const Tensor& h, Tensor& f, const ThreadPool& pool) {
    const uint16_t* src = h.data<uint16_t>();
    float* dst = f.data<float>();
    pool.parallel_for(h.numel(), kGrain, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) dst[i] = half_to_float(src[i]);
    });
}

void float_to_half_n(const Tensor& f, Tensor& h, const ThreadPool& pool) {
    const float* src = f.data<float>();
    uint16_t* dst = h.data<uint16_t>();
    pool.parallel_for(f.numel(), kGrain, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) dst[i] = float_to_half(src[i]);
    });
}

Tensor to_float32(const Tensor& h) {
    Tensor f(DType::Float32, h.shape());
    const uint16_t* src = h.data<uint16_t>();
    float* dst = f.data<float>();
    for (int64_t i = 0; i < h.numel(); ++i) dst[i] = half_to_float(src[i]);
    return f;
}

Tensor to_float16(const Tensor& f) {
    Tensor h(DType::Float16, f.shape());
    const float* src = f.data<float>();
    uint16_t* dst = h.data<uint16_t>();
    for (int64_t i = 0; i < f.numel(); ++i) dst[i] = float_to_half(src[i]);
    return h;
}

class Float16Fallback final : public Kernel {
public:
    explicit Float16Fallback(KernelFactory factory)
        : factory_(std::move(factory)), inner_(factory_()) {}

    Status prepare(PrepareContext& ctx) override {
        bool any_half = false;
        for (const TensorInfo& t : ctx.inputs) any_half |= t.dtype == DType::Float16;
        if (!any_half) return inner_->prepare(ctx);
        Status native = inner_->prepare(ctx);
        if (native.is_ok()) return native;

        // The kernel rejected float16: prepare a fresh one on float32 views of the inputs.
        PrepareContext f32{ctx.node, ctx.opset, ctx.inputs, {}};
        f32.outputs.resize(ctx.outputs.size());
        const size_t n_in = ctx.inputs.size();
        in_kind_.assign(n_in, InputKind::Pass);
        in_.assign(n_in, Tensor());
        for (size_t i = 0; i < n_in; ++i) {
            TensorInfo& t = f32.inputs[i];
            if (t.dtype != DType::Float16) continue;
            t.dtype = DType::Float32;
            if (t.value) {
                t.value = to_float32(*t.value);
                in_kind_[i] = InputKind::Constant;
                in_[i] = *t.value;
            } else {
                in_kind_[i] = InputKind::Convert;
                in_[i] = Tensor(DType::Float32, t.shape);
            }
        }
        inner_ = factory_();
        Status st = inner_->prepare(f32);
        if (!st.is_ok()) {
            return st.with_context("while running float16 inputs as float32 (no float16 kernel)");
        }
        const size_t n_out = ctx.outputs.size();
        round_out_.assign(n_out, false);
        out_.assign(n_out, Tensor());
        for (size_t o = 0; o < n_out; ++o) {
            TensorInfo& t = f32.outputs[o];
            if (t.dtype == DType::Float32) {
                t.dtype = DType::Float16;
                if (t.value) {
                    t.value = to_float16(*t.value);
                } else {
                    round_out_[o] = true;
                    out_[o] = Tensor(DType::Float32, t.shape);
                }
            }
            ctx.outputs[o] = std::move(t);
        }
        active_ = true;
        return Status::ok();
    }

    Status run(RunContext& ctx) override {
        if (!active_) return inner_->run(ctx);
        for (size_t i = 0; i < in_.size(); ++i) {
            if (in_kind_[i] == InputKind::Convert) {
                half_to_float_n(ctx.inputs[i], in_[i], ctx.pool);
            } else if (in_kind_[i] == InputKind::Pass) {
                in_[i] = ctx.inputs[i];  // shares the buffer; no allocation once shapes match
            }
        }
        // An output the node does not produce (absent name) arrives empty: pass it on so.
        for (size_t o = 0; o < out_.size(); ++o) {
            if (!round_out_[o] || ctx.outputs[o].empty()) out_[o] = ctx.outputs[o];
        }
        RunContext f32{ctx.node, in_, out_, ctx.pool};
        LOWBIT_TRY(inner_->run(f32));
        for (size_t o = 0; o < out_.size(); ++o) {
            if (round_out_[o] && !ctx.outputs[o].empty()) {
                float_to_half_n(out_[o], ctx.outputs[o], ctx.pool);
            }
        }
        return Status::ok();
    }

    // Only when the inner kernel reads the node's own inputs (no float16 conversion).
    std::vector<int64_t> output_runs_of_input() const override {
        return active_ ? std::vector<int64_t>{} : inner_->output_runs_of_input();
    }

private:
    KernelFactory factory_;
    std::unique_ptr<Kernel> inner_;
    // How input i reaches the float32 kernel: as is (not float16), converted into in_[i] each
    // run, or as the float32 copy of a float16 constant made once in prepare().
    enum class InputKind { Pass, Convert, Constant };

    bool active_ = false;  // float16 inputs run through the float32 kernel
    std::vector<InputKind> in_kind_;
    std::vector<bool> round_out_;   // output o is computed into out_[o], rounded to float16
    std::vector<Tensor> in_, out_;  // what the float32 kernel sees
};

}  // namespace

std::unique_ptr<Kernel> make_float16_fallback(KernelFactory factory) {
    return std::make_unique<Float16Fallback>(std::move(factory));
}

}  // namespace lowbit
