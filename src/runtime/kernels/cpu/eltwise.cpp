// Vectorized, threaded float32 elementwise ops: Add/Sub/Mul/Div with full-size, scalar,
// per-channel (NHWC [1, C, 1, 1], or plain [..., C] along the last axis) or per-row (plain
// [..., 1]) operands, and Sigmoid. The arithmetic is the same IEEE operation the
// reference kernels do, so Add/Sub/Mul/Div are bit-exact; Sigmoid uses vmath.h (<= 1e-6 rel).
#include <fmt/format.h>

#include <algorithm>

#include "runtime/kernels/cpu/ops.h"
#include "runtime/kernels/cpu/vmath.h"

namespace lowbit::cpu {
namespace {

// Elements per parallel chunk: below this a loop stays on the calling thread.
constexpr int64_t kGrain = 16384;

// Full: the output's shape; Scalar: one value; Channel: one value per position along the
// contiguous axis (an NHWC per-channel [1, C, 1, 1] operand, or a plain [..., C] operand
// broadcast over the rows, like LayerNorm's gamma and beta); Row: one value per row of the
// contiguous axis (a plain [..., 1] operand of the output's leading dims, like LayerNorm's mean).
enum class Kind { Full, Scalar, Channel, Row };

struct AddF {
    float operator()(float a, float b) const { return a + b; }
};
struct SubF {
    float operator()(float a, float b) const { return a - b; }
};
struct MulF {
    float operator()(float a, float b) const { return a * b; }
};
struct DivF {
    float operator()(float a, float b) const { return a / b; }
};

template <Kind K>
inline float load(const float* p, int64_t i, int64_t ch, int64_t row) {
    if constexpr (K == Kind::Full) return p[i];
    if constexpr (K == Kind::Scalar) return p[0];
    if constexpr (K == Kind::Row) return p[row];
    return p[ch];
}

// Elements [begin, end) of a flat output (no Channel operand).
template <class Op, Kind KA, Kind KB>
void flat_range(const float* a, const float* b, float* y, int64_t begin, int64_t end) {
    const Op op;
    for (int64_t i = begin; i < end; ++i) y[i] = op(load<KA>(a, i, 0, 0), load<KB>(b, i, 0, 0));
}

// Rows [r0, r1) of an output viewed as [rows, c] (some operand per-channel or per-row).
template <class Op, Kind KA, Kind KB>
void channel_rows(const float* a, const float* b, float* y, int64_t r0, int64_t r1, int64_t c) {
    const Op op;
    for (int64_t r = r0; r < r1; ++r) {
        const int64_t base = r * c;
        for (int64_t j = 0; j < c; ++j) {
            y[base + j] = op(load<KA>(a, base + j, j, r), load<KB>(b, base + j, j, r));
        }
    }
}

class BinaryOp final : public FastOp {
public:
    using Fn = void (*)(const float*, const float*, float*, int64_t, int64_t, int64_t);

    BinaryOp(Fn fn, bool per_channel, int64_t n, int64_t c, std::string what)
        : fn_(fn), per_channel_(per_channel), n_(n), c_(c), what_(std::move(what)) {}

    Status run(std::span<const Tensor> in, std::span<Tensor> out, const ThreadPool& pool) override {
        const float* a = in[0].data<float>();
        const float* b = in[1].data<float>();
        float* y = out[0].data<float>();
        if (per_channel_) {
            const int64_t rows = n_ / c_;
            pool.parallel_for(rows, std::max<int64_t>(1, kGrain / c_),
                              [&](int64_t r0, int64_t r1) { fn_(a, b, y, r0, r1, c_); });
        } else {
            pool.parallel_for(n_, kGrain, [&](int64_t i0, int64_t i1) { fn_(a, b, y, i0, i1, 0); });
        }
        return Status::ok();
    }

    std::string describe() const override { return what_; }

private:
    Fn fn_;
    bool per_channel_;
    int64_t n_, c_;
    std::string what_;
};

template <class Op, Kind KA, Kind KB>
void call_kernel(const float* a, const float* b, float* y, int64_t r0, int64_t r1, int64_t c) {
    if constexpr (KA == Kind::Channel || KB == Kind::Channel || KA == Kind::Row ||
                  KB == Kind::Row) {
        channel_rows<Op, KA, KB>(a, b, y, r0, r1, c);
    } else {
        flat_range<Op, KA, KB>(a, b, y, r0, r1);
    }
}

template <class Op, Kind KA>
BinaryOp::Fn pick_b(Kind kb) {
    switch (kb) {
        case Kind::Full: return &call_kernel<Op, KA, Kind::Full>;
        case Kind::Scalar: return &call_kernel<Op, KA, Kind::Scalar>;
        case Kind::Row: return &call_kernel<Op, KA, Kind::Row>;
        default: return &call_kernel<Op, KA, Kind::Channel>;
    }
}

template <class Op>
BinaryOp::Fn pick(Kind ka, Kind kb) {
    switch (ka) {
        case Kind::Full: return pick_b<Op, Kind::Full>(kb);
        case Kind::Scalar: return pick_b<Op, Kind::Scalar>(kb);
        case Kind::Row: return pick_b<Op, Kind::Row>(kb);
        default: return pick_b<Op, Kind::Channel>(kb);
    }
}

class SigmoidOp final : public FastOp {
public:
    Status run(std::span<const Tensor> in, std::span<Tensor> out, const ThreadPool& pool) override {
        const float* x = in[0].data<float>();
        float* y = out[0].data<float>();
        pool.parallel_for(out[0].numel(), kGrain,
                          [&](int64_t b, int64_t e) { sigmoid_f32(x + b, y + b, e - b); });
        return Status::ok();
    }
    std::string describe() const override { return "Sigmoid"; }
};

}  // namespace

std::unique_ptr<FastOp> make_binary(const Node& node, std::span<const Operand> ins,
                                    const Operand& out, Layout layout) {
    if (ins.size() != 2 || out.dtype != DType::Float32) return nullptr;
    const int64_t n = shape_numel(out.shape);
    const size_t rank = out.shape.size();
    // The contiguous axis: channels of an NHWC tensor, else the last axis.
    const int64_t c = layout == Layout::Nhwc ? (rank == 4 ? out.shape[1] : 0)
                                             : (rank > 0 ? out.shape.back() : 0);
    Kind kinds[2];
    bool per_channel = false;
    for (size_t i = 0; i < 2; ++i) {
        const Operand& o = ins[i];
        if (o.dtype != DType::Float32) return nullptr;
        if (o.shape == out.shape) {
            kinds[i] = Kind::Full;
        } else if (shape_numel(o.shape) == 1) {
            kinds[i] = Kind::Scalar;
        } else if (layout == Layout::Nhwc && c > 0 && shape_numel(o.shape) == c &&
                   o.shape.size() >= 3 && o.shape.size() <= 4 && o.shape[o.shape.size() - 3] == c) {
            // [1, C, 1, 1] or [C, 1, 1]: constant along H and W, so along an NHWC row it is
            // the channel vector itself.
            kinds[i] = Kind::Channel;
            per_channel = true;
        } else if (layout == Layout::Plain && c > 1 && o.shape.size() <= rank &&
                   !o.shape.empty() && o.shape.back() == c && shape_numel(o.shape) == c) {
            kinds[i] = Kind::Channel;  // [..., C] along the last axis
            per_channel = true;
        } else if (layout == Layout::Plain && c > 1 && o.shape.size() == rank &&
                   o.shape.back() == 1 &&
                   std::equal(o.shape.begin(), o.shape.end() - 1, out.shape.begin())) {
            kinds[i] = Kind::Row;  // [..., 1]: one value per row
            per_channel = true;
        } else {
            return nullptr;
        }
    }
    if (n == 0) return nullptr;
    BinaryOp::Fn fn;
    const std::string& t = node.op_type;
    if (t == "Add")
        fn = pick<AddF>(kinds[0], kinds[1]);
    else if (t == "Sub")
        fn = pick<SubF>(kinds[0], kinds[1]);
    else if (t == "Mul")
        fn = pick<MulF>(kinds[0], kinds[1]);
    else if (t == "Div")
        fn = pick<DivF>(kinds[0], kinds[1]);
    else
        return nullptr;
    const char* kind_names[] = {"full", "scalar", "channel", "row"};
    return std::make_unique<BinaryOp>(
        fn, per_channel, n, c,
        fmt::format("{} {}x{} [{}]", t, kind_names[static_cast<int>(kinds[0])],
                    kind_names[static_cast<int>(kinds[1])], layout_name(layout)));
}

std::unique_ptr<FastOp> make_sigmoid(const Node& node, std::span<const Operand> ins) {
    if (node.op_type != "Sigmoid" || ins.size() != 1 || ins[0].dtype != DType::Float32) {
        return nullptr;
    }
    return std::make_unique<SigmoidOp>();
}

}  // namespace lowbit::cpu
