// Int8 data movement in Q/DQ graphs (fast_ops.h QuantMoveSpec; runtime/fusion.h matches it):
//   Concat(DequantizeLinear(a_q, s_a) | float b, ...) -> QuantizeLinear(., s_y)
//   DequantizeLinear(x_q, s_x) -> MaxPool -> QuantizeLinear(., s_y)
// as one step on NHWC int8 codes. A code input is requantized through a 256-entry table built
// at plan time with the simulation's own arithmetic: table[c] = quantize_s8(dequantize_s8(c,
// s_in), s_y), so the step equals DequantizeLinear -> (copy | max) -> QuantizeLinear bit for
// bit (the same scales give the identity table: the codes move unchanged). MaxPool commutes
// with the dequantization (a positive scale is monotone), so the max is taken on the codes.
// A float32 Concat input is quantized as QuantizeLinear does, here or, when its producer is an
// int8 conv step writing float32, by that step straight into this step's output
// (plan_quantized_concat_slices; the part is then skipped). run() allocates nothing.
#include <fmt/format.h>

#include <array>
#include <cstring>
#include <limits>

#if defined(__AVX512BW__)
#include <immintrin.h>
#endif

#include "runtime/kernels/cpu/ops.h"
#include "runtime/kernels/cpu/qdq_math.h"

namespace lowbit::cpu {
namespace {

using Table = std::array<int8_t, 256>;

Table requant_table(float s_in, float s_out) {
    Table t{};
    int8_t codes[256];
    float v[256];
    for (int i = 0; i < 256; ++i) codes[i] = static_cast<int8_t>(i - 128);
    dequantize_s8(codes, v, 256, s_in);
    int8_t q[256];
    quantize_s8(v, q, 256, s_out);
    for (int i = 0; i < 256; ++i) t[static_cast<size_t>(i)] = q[i];
    return t;
}

bool identity(const Table& t) {
    for (int i = 0; i < 256; ++i) {
        if (t[static_cast<size_t>(i)] != static_cast<int8_t>(i - 128)) return false;
    }
    return true;
}

inline void apply_table(const Table& t, const int8_t* x, int8_t* y, int64_t n) {
    requantize_s8(t.data(), x, y, n);
}

// y[i] = max(y[i], x[i]).
inline void max_s8(const int8_t* __restrict x, int8_t* __restrict y, int64_t n) {
    int64_t i = 0;
#if defined(__AVX512BW__)
    for (; i + 64 <= n; i += 64) {
        const __m512i a = _mm512_loadu_si512(x + i);
        const __m512i b = _mm512_loadu_si512(y + i);
        _mm512_storeu_si512(y + i, _mm512_max_epi8(a, b));
    }
#endif
    for (; i < n; ++i) y[i] = x[i] > y[i] ? x[i] : y[i];
}

// Concat on channels -> QuantizeLinear, NHWC: each output pixel row is the inputs' rows in
// order, each requantized (codes) or quantized (float32).
class QConcatOp final : public FastOp {
public:
    struct Part {
        int64_t c = 0;
        bool codes = false, copy = false;  // copy: identity table
        bool in_place = false;  // a float part whose producer writes its codes (not read here)
        Table table{};
        // A fused nearest Resize: source row / column per output row / column, source size.
        std::vector<int64_t> map_h, map_w;
        int64_t ih = 0, iw = 0;
    };
    QConcatOp(std::vector<Part> parts, int64_t pixels, int64_t h, int64_t w, int64_t total,
              float y_scale)
        : parts_(std::move(parts)), pixels_(pixels), h_(h), w_(w), total_(total),
          y_scale_(y_scale) {}

    Status run(std::span<const Tensor> in, std::span<Tensor> out, const ThreadPool& pool) override {
        auto* y = static_cast<int8_t*>(out[0].raw());
        const int64_t grain = std::max<int64_t>(1, 8192 / std::max<int64_t>(1, total_));
        pool.parallel_for(pixels_, grain, [&](int64_t p0, int64_t p1) {
            int64_t off = 0;
            for (size_t k = 0; k < parts_.size(); ++k) {
                const Part& pt = parts_[k];
                if (pt.in_place) {
                    off += pt.c;
                    continue;
                }
                for (int64_t p = p0; p < p1; ++p) {
                    int8_t* d = y + p * total_ + off;
                    int64_t sp = p;  // source pixel
                    if (!pt.map_h.empty()) {
                        const int64_t b = p / (h_ * w_), oh = (p / w_) % h_, ow = p % w_;
                        sp = (b * pt.ih + pt.map_h[static_cast<size_t>(oh)]) * pt.iw +
                             pt.map_w[static_cast<size_t>(ow)];
                    }
                    if (pt.codes) {
                        const int8_t* s = static_cast<const int8_t*>(in[k].raw()) + sp * pt.c;
                        if (pt.copy) {
                            std::memcpy(d, s, static_cast<size_t>(pt.c));
                        } else {
                            apply_table(pt.table, s, d, pt.c);
                        }
                    } else {
                        quantize_s8(static_cast<const float*>(in[k].raw()) + p * pt.c, d, pt.c,
                                    y_scale_);
                    }
                }
                off += pt.c;
            }
        });
        return Status::ok();
    }
    std::string describe() const override {
        int req = 0, q = 0, up = 0, in_place = 0;
        for (const auto& p : parts_) {
            if (p.in_place)
                ++in_place;
            else if (!p.codes)
                ++q;
            else if (!p.copy)
                ++req;
            if (!p.map_h.empty()) ++up;
        }
        return fmt::format(
            "QConcat int8 x{} [nhwc] {} requantized, {} quantized{}{} ->int8", parts_.size(), req,
            q,
            in_place ? fmt::format(", {} quantized by their producers", in_place) : std::string(),
            up ? fmt::format(", {} nearest-resized", up) : std::string());
    }

    // A float part (not a fused Resize's) is quantized at the step's scale.
    float quantizes_input(size_t in) const override {
        return in < parts_.size() && !parts_[in].codes && parts_[in].map_h.empty() ? y_scale_
                                                                                   : 0.0f;
    }
    bool set_input_in_place(size_t in) override {
        if (quantizes_input(in) <= 0.0f) return false;
        parts_[in].in_place = true;
        return true;
    }

private:
    std::vector<Part> parts_;
    int64_t pixels_, h_, w_, total_;
    float y_scale_;
};

// MaxPool on int8 codes (NHWC) -> requantize.
class QMaxPoolOp final : public FastOp {
public:
    QMaxPoolOp(int64_t n, int64_t c, Window h, Window w, Table t)
        : n_(n), c_(c), h_(h), w_(w), table_(t), copy_(identity(t)) {}

    Status run(std::span<const Tensor> in, std::span<Tensor> out, const ThreadPool& pool) override {
        const auto* x = static_cast<const int8_t*>(in[0].raw());
        auto* y = static_cast<int8_t*>(out[0].raw());
        const int64_t rows = n_ * h_.out;
        pool.parallel_for(rows, 1, [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; ++r) {
                const int64_t b = r / h_.out;
                const int64_t oh = r % h_.out;
                const int8_t* xb = x + b * h_.in * w_.in * c_;
                for (int64_t ow = 0; ow < w_.out; ++ow) {
                    int8_t* yo = y + (r * w_.out + ow) * c_;
                    // An empty window: the float kernel writes the lowest float, which
                    // QuantizeLinear saturates to -128.
                    if (!window_max_nhwc(xb, yo, c_, h_, w_, oh, ow, max_s8)) {
                        std::memset(yo, 0x80, static_cast<size_t>(c_));
                    } else if (!copy_) {
                        apply_table(table_, yo, yo, c_);
                    }
                }
            }
        });
        return Status::ok();
    }
    std::string describe() const override {
        return fmt::format("QMaxPool int8 {}x{} s{} [nhwc]{} ->int8", h_.k, w_.k, h_.stride,
                           copy_ ? "" : " requantized");
    }

private:
    int64_t n_, c_;
    Window h_, w_;
    Table table_;
    bool copy_;
};

}  // namespace

std::unique_ptr<FastOp> make_qmove(const Node& node, int64_t opset, std::span<const Operand> ins,
                                   const Operand& out, const QuantMoveSpec& spec) {
    auto refuse = [&](std::string why) -> std::unique_ptr<FastOp> {
        spec.fallback = std::move(why);
        return nullptr;
    };
    if (out.shape.size() != 4) {
        return refuse(fmt::format("{} of a rank-{} tensor: only 4-D (NHWC) moves are int8",
                                  node.op_type, out.shape.size()));
    }
    if (spec.in_scale.size() != ins.size()) return refuse("operands do not match the pattern");
    for (size_t k = 0; k < ins.size(); ++k) {
        const bool codes = spec.in_scale[k] > 0.0f;
        if (ins[k].dtype != (codes ? DType::Int8 : DType::Float32) || ins[k].shape.size() != 4 ||
            ins[k].constant) {
            return refuse(fmt::format("{} input {} is neither int8 codes nor a float32 tensor",
                                      node.op_type, k));
        }
    }
    if (node.op_type == "Concat") {
        int64_t axis = node.attr_int("axis", 1);
        if (axis < 0) axis += 4;
        if (axis != 1) return refuse("Concat not on the channel axis");
        std::vector<QConcatOp::Part> parts;
        int64_t total = 0;
        for (size_t k = 0; k < ins.size(); ++k) {
            QConcatOp::Part p;
            Shape s = ins[k].shape;
            const auto* up = k < spec.upsample.size() && spec.upsample[k].resize
                                 ? &spec.upsample[k]
                                 : nullptr;
            if (up) {
                // The Resize's own operands: X (the codes), roi (unused), scales.
                Operand rin[3];
                rin[0] = ins[k];
                if (up->scales) {
                    rin[2].dtype = up->scales->dtype();
                    rin[2].shape = up->scales->shape();
                    rin[2].constant = up->scales;
                }
                Operand rout;
                rout.dtype = DType::Int8;
                rout.shape = up->out;
                if (up->out.size() != 4 ||
                    !nearest_resize_maps(*up->resize, opset,
                                         std::span<const Operand>(rin, up->scales ? 3 : 1), rout,
                                         p.map_h, p.map_w)) {
                    return refuse("Resize before the Concat is not a nearest integer up-scaling");
                }
                p.ih = s[2];
                p.iw = s[3];
                s = up->out;
            }
            if (s[0] != out.shape[0] || s[2] != out.shape[2] || s[3] != out.shape[3]) {
                return refuse("Concat operands differ in N/H/W");
            }
            p.c = s[1];
            p.codes = spec.in_scale[k] > 0.0f;
            if (p.codes) {
                p.table = requant_table(spec.in_scale[k], spec.y_scale);
                p.copy = identity(p.table);
            }
            total += p.c;
            parts.push_back(p);
        }
        if (total != out.shape[1]) return refuse("Concat channel count mismatch");
        return std::make_unique<QConcatOp>(std::move(parts),
                                           out.shape[0] * out.shape[2] * out.shape[3],
                                           out.shape[2], out.shape[3], total, spec.y_scale);
    }
    if (node.op_type == "MaxPool") {
        if (ins.size() != 1 || spec.in_scale[0] <= 0.0f) return refuse("MaxPool input is float");
        if (node.outputs.size() > 1 && !node.outputs[1].empty()) {
            return refuse("MaxPool with an Indices output");
        }
        if (node.attr_int("storage_order", 0) != 0) return refuse("MaxPool storage_order 1");
        const auto ks = node.attr_ints("kernel_shape");
        Window h, w;
        if (ks.size() != 2 || !window_2d(node, ins[0].shape, out.shape, ks, h, w)) {
            return refuse("MaxPool attributes");
        }
        return std::make_unique<QMaxPoolOp>(out.shape[0], out.shape[1], h, w,
                                            requant_table(spec.in_scale[0], spec.y_scale));
    }
    return refuse(fmt::format("{}: no int8 data-movement kernel", node.op_type));
}

}  // namespace lowbit::cpu
