// Layout-blind elementwise ops without a dedicated fast kernel (QuantizeLinear and
// DequantizeLinear with per-tensor parameters, Clip, Relu, Cast, ...) run their *reference*
// kernel on slices of the flat element range, in parallel on the ThreadPool. Output element i
// depends only on input element i (and scalars), so any split is exact: the result is
// bit-identical to one reference call.
//
// Each slice length gets its own kernel instance, prepared for operands reshaped to
// [1, ..., 1, len] (the original rank, so that attributes such as Q/DQ's `axis` stay valid);
// scalar operands keep their shapes.
#include <fmt/format.h>

#include <map>

#include "core/thread_pool.h"
#include "runtime/kernel.h"
#include "runtime/kernels/cpu/ops.h"
#include "runtime/registry.h"

namespace lowbit::cpu {
namespace {

// Below this many elements one reference call on the calling thread is cheaper.
constexpr int64_t kMinParallel = 1 << 16;

class ParallelRefOp final : public FastOp {
public:
    ParallelRefOp(const Node& node, int64_t n) : node_(node), n_(n) {}

    bool init(int64_t opset, std::span<const Operand> ins, std::span<const Operand> outs,
              int n_threads) {
        out_shape_ = outs[0].shape;
        const int64_t chunks = std::min<int64_t>(4 * n_threads, n_ / (kMinParallel / 4));
        for (int64_t c = 0; c < chunks; ++c) {
            const int64_t b = n_ * c / chunks, e = n_ * (c + 1) / chunks;
            ranges_.push_back({b, e});
            if (kernels_.count(e - b)) continue;
            auto k = KernelRegistry::builtin().create(node_.op_type);
            if (!k) return false;
            PrepareContext ctx{node_, opset, {}, {}};
            for (const Operand& o : ins) {
                TensorInfo info;
                if (o.present()) {
                    info.dtype = o.dtype;
                    info.shape = full(o.shape) ? sliced(o.shape, e - b) : o.shape;
                    if (o.constant && !full(o.shape)) info.value = *o.constant;
                }
                ctx.inputs.push_back(std::move(info));
            }
            ctx.outputs.resize(outs.size());
            if (!k->prepare(ctx).is_ok()) return false;
            for (size_t i = 0; i < outs.size(); ++i) {
                if (ctx.outputs[i].dtype != outs[i].dtype ||
                    ctx.outputs[i].shape != sliced(outs[i].shape, e - b) ||
                    ctx.outputs[i].value.has_value()) {
                    return false;
                }
            }
            kernels_[e - b] = std::move(k);
        }
        for (const Operand& o : ins) full_.push_back(o.present() && full(o.shape));
        return ranges_.size() > 1;
    }

    Status run(std::span<const Tensor> in, std::span<Tensor> out, const ThreadPool& pool) override {
        std::vector<Status> status(ranges_.size());
        pool.run(static_cast<int64_t>(ranges_.size()), [&](int64_t c, int) {
            const auto [b, e] = ranges_[static_cast<size_t>(c)];
            std::vector<Tensor> ins, outs;
            for (size_t i = 0; i < in.size(); ++i) {
                ins.push_back(full_[i] ? slice(in[i], b, e) : in[i]);
            }
            for (Tensor& t : out) outs.push_back(t.empty() ? Tensor() : slice(t, b, e));
            // The reference kernel runs single-threaded inside the task.
            ThreadPool serial(1);
            RunContext rc{node_, ins, outs, serial};
            status[static_cast<size_t>(c)] = kernels_.at(e - b)->run(rc);
        });
        for (const Status& s : status) LOWBIT_TRY(s);
        return Status::ok();
    }

    std::string describe() const override {
        return fmt::format("{} [ref x{} slices]", node_.op_type, ranges_.size());
    }

private:
    bool full(const Shape& s) const { return s == out_shape_; }
    static Shape sliced(const Shape& s, int64_t len) {
        Shape r(s.size(), 1);
        if (!r.empty()) r.back() = len;
        return r;
    }
    Tensor slice(const Tensor& t, int64_t b, int64_t e) const {
        return Tensor(t.dtype(), sliced(t.shape(), e - b), t.buffer(),
                      t.offset() + static_cast<size_t>(b) * dtype_size(t.dtype()));
    }

    Node node_;
    int64_t n_;
    std::vector<std::pair<int64_t, int64_t>> ranges_;
    std::map<int64_t, std::unique_ptr<Kernel>> kernels_;
    std::vector<bool> full_;
    Shape out_shape_;
};

}  // namespace

std::unique_ptr<FastOp> make_parallel_ref(const Node& node, int64_t opset,
                                          std::span<const Operand> ins,
                                          std::span<const Operand> outs, int n_threads) {
    if (n_threads <= 1 || outs.size() != 1 || outs[0].shape.empty()) return nullptr;
    const int64_t n = shape_numel(outs[0].shape);
    if (n < kMinParallel) return nullptr;
    for (const Operand& o : ins) {
        if (o.present() && o.shape != outs[0].shape && shape_numel(o.shape) != 1) return nullptr;
    }
    auto op = std::make_unique<ParallelRefOp>(node, n);
    if (!op->init(opset, ins, outs, n_threads)) return nullptr;
    return op;
}

}  // namespace lowbit::cpu
