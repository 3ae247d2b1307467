// MatMul through oneDNN's matmul primitive: float32, A [..., M, K] x B [..., K, N] with ranks 2-4
// and NumPy broadcasting of the batch dims (a smaller-rank operand gets leading 1s, which is
// how oneDNN expresses a broadcast batch dim). Plain row-major layouts. When B is one matrix
// and there are several threads, A is read as one [rows, K] matrix and the product is cut into
// row chunks (or, for few rows, column chunks, so each thread streams only its share of B),
// one single-thread primitive each with strided views, run as pool tasks. With `bias` (fusion.cpp:
// MatMul -> Add(., bias), the bias a constant vector along the last axis, as input 2) the
// primitive adds the bias while the output is in cache (ConvNeXt's and the transformers' linear
// layers), instead of a separate pass over the output. ConvNeXt's block then multiplies by a
// per-channel layer scale (input 3) and adds the residual (input 4) (ConvFusion::matmul_scale,
// matmul_residual): one vectorized pass over each chunk right after its primitive, while the
// chunk is in cache, in place of two passes over the whole tensor (and a Transpose copy, which
// the layout absorbs: ConvFusion::matmul_nhwc).
#include <fmt/format.h>

#include <algorithm>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "runtime/kernels/cpu/dnnl_state.h"
#include "runtime/kernels/cpu/ops.h"

namespace lowbit::cpu {
namespace {

using dnnl::memory;
using DT = dnnl::memory::data_type;

// Weights above this size are streamed from L3 by every chunk that reads them all: a quarter
// of this CPU's 1 MiB L2 (as conv.cpp sizes its chunk outputs).
constexpr double kBigWeightBytes = 256.0 * 1024;

memory::format_tag plain_tag(size_t rank) {
    switch (rank) {
        case 2: return memory::format_tag::ab;
        case 3: return memory::format_tag::abc;
        default: return memory::format_tag::abcd;
    }
}

memory::dims padded(const Shape& s, size_t rank) {
    memory::dims d(rank - s.size(), 1);
    d.insert(d.end(), s.begin(), s.end());
    return d;
}

// y[j] = x[j] * scale[j] + r[j] over `n` columns, either of scale and r null (skipped); the
// unfused Mul and Add, in that order. x may be y.
void scale_add_row(float* y, const float* x, const float* scale, const float* r, int64_t n) {
    int64_t j = 0;
#if defined(__AVX512F__)
    for (; j < n; j += 16) {
        const __mmask16 k =
            n - j >= 16 ? __mmask16(0xffff) : static_cast<__mmask16>((1u << (n - j)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(k, x + j);
        if (scale) v = _mm512_mul_ps(v, _mm512_maskz_loadu_ps(k, scale + j));
        if (r) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(k, r + j));
        _mm512_mask_storeu_ps(y + j, k, v);
    }
#endif
    for (; j < n; ++j) {
        float v = x[j];
        if (scale) v = v * scale[j];
        if (r) v = v + r[j];
        y[j] = v;
    }
}

class MatMulOp final : public FastOp {
public:
    explicit MatMulOp(DnnlState& dnnl) : dnnl_(dnnl) {}

    bool init(const Node& node, std::span<const Operand> ins, const Operand& out, int n_threads,
              const ConvFusion& fusion, std::vector<std::string>& warnings) {
        const bool bias = fusion.matmul_bias;
        has_bias_ = bias;
        scale_ = fusion.matmul_scale;
        residual_ = fusion.matmul_residual;
        const size_t rank = out.shape.size();
        const Shape& b = ins[1].shape;
        const int64_t k = b[b.size() - 2], n = b.back();
        // B one matrix (every batch dim 1) and A its own plain array: A is one [rows, K]
        // matrix, cut into row chunks that the pool threads run (a linear layer over pixels
        // or tokens, ConvNeXt's and the attention blocks' MLPs).
        const int64_t rows = shape_numel(out.shape) / std::max<int64_t>(1, n);
        bool b_single = shape_numel(b) == k * n;
        const double flops = 2.0 * static_cast<double>(rows) * static_cast<double>(k * n);
        // About 4 chunks per thread, none below ~20 us of work (as conv.cpp sizes chunks).
        int64_t chunks = b_single && n_threads > 1 && ins[0].shape.back() == k
                             ? std::clamp<int64_t>(static_cast<int64_t>(flops / 100e9 / 20e-6), 1,
                                                   std::min<int64_t>(4 * n_threads, rows))
                             : 1;
        // B bigger than a quarter of L2: one chunk per thread. Each row chunk streams all of B
        // from L3; ConvNeXt-tiny's third stage (196 rows x [384, 1536], 2.4 MB) took 30% more
        // CPU time in 8 chunks than in 2 at 2 threads.
        if (static_cast<double>(k * n) * 4.0 > kBigWeightBytes) {
            chunks = std::min<int64_t>(chunks, n_threads);
        }
        std::vector<memory::desc> a_mds, b_mds, y_mds, bias_mds;
        // A constant B (a linear layer's weights) goes to each primitive in the format it
        // prefers, reordered once here: with B plain, oneDNN's brgemm matmul copies B into
        // its blocked format on every call, which for few rows costs more than the product
        // (ConvNeXt-tiny's last stage, 49 rows x [768, 3072]: ~2x slower).
        pack_ = ins[1].constant != nullptr && b_single && ins[0].shape.back() == k;
        if (chunks > 1 || pack_) {
            // Few rows: cut B's columns, so that each thread streams its own part of the
            // weights; else cut A's rows (oneDNN picks its slower gemm:jit for a column
            // slice of plain B: measured faster only below ~64 rows). Column cuts on
            // multiples of 16. One thread: one piece. With B packed a column piece writes a
            // dense buffer of its own (brgemm takes no strided output; it would fall back to
            // gemm:jit) that the epilogue copies into place.
            const bool by_cols = chunks > 1 && rows < 64 && n >= 32;
            const int64_t pieces = by_cols ? std::min<int64_t>(chunks, n / 16) : chunks;
            for (int64_t i = 0; i < pieces; ++i) {
                Cut c{0, rows, 0, n};
                if (by_cols) {
                    c.c0 = n / 16 * i / pieces * 16;
                    c.c1 = i + 1 == pieces ? n : n / 16 * (i + 1) / pieces * 16;
                } else {
                    c.r0 = rows * i / pieces;
                    c.r1 = rows * (i + 1) / pieces;
                }
                cuts_.push_back(c);
                a_mds.push_back(memory::desc({c.r1 - c.r0, k}, DT::f32, memory::dims{k, 1}));
                b_mds.push_back(
                    pack_ ? memory::desc({k, c.c1 - c.c0}, DT::f32, memory::format_tag::any)
                          : memory::desc({k, c.c1 - c.c0}, DT::f32, memory::dims{n, 1}));
                y_mds.push_back(memory::desc({c.r1 - c.r0, c.c1 - c.c0}, DT::f32,
                                             memory::dims{by_cols && pack_ ? c.c1 - c.c0 : n, 1}));
                bias_mds.push_back(memory::desc({1, c.c1 - c.c0}, DT::f32, memory::dims{n, 1}));
            }
            k_ = k;
            n_ = n;
            by_cols_ = by_cols;
        } else {
            a_mds.push_back(
                memory::desc(padded(ins[0].shape, rank), DT::f32, plain_tag(rank)));
            b_mds.push_back(memory::desc(padded(b, rank), DT::f32, plain_tag(rank)));
            y_mds.push_back(memory::desc(padded(out.shape, rank), DT::f32, plain_tag(rank)));
            bias_mds.push_back(memory::desc(padded({n}, rank), DT::f32, plain_tag(rank)));
            // The whole product: offsets 0, and the epilogue's rows and columns.
            cuts_.push_back({0, rows, 0, n});
            n_ = n;
        }
        dnnl::primitive_attr attr;
        attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
        std::string impl;
        for (size_t i = 0; i < a_mds.size(); ++i) {
            Part p;
            p.pd = dnnl::matmul::primitive_desc(
                bias ? dnnl::matmul::desc(a_mds[i], b_mds[i], bias_mds[i], y_mds[i])
                     : dnnl::matmul::desc(a_mds[i], b_mds[i], y_mds[i]),
                attr, dnnl_.engine);
            if (i == 0) impl = p.pd.impl_info_str();
            if (is_dnnl_ref_impl(p.pd.impl_info_str())) {
                warnings.push_back(fmt::format(
                    "{}: oneDNN has only '{}' for {} x {}; using lowbit's "
                    "reference MatMul",
                    node.describe(), p.pd.impl_info_str(), shape_str(ins[0].shape),
                    shape_str(b)));
                return false;
            }
            p.prim = dnnl::matmul(p.pd);
            if (pack_) {
                // B's columns [c0, c1) as a strided view of the plain constant.
                p.b_plain =
                    memory::desc({k, cuts_[i].c1 - cuts_[i].c0}, DT::f32, memory::dims{n, 1});
                p.b_packed = memory(p.pd.weights_desc(), dnnl_.engine);
            }
            dnnl_.reserve(Workspace::Scratchpad, p.pd.scratchpad_desc().get_size());
            p.a = memory(a_mds[i], dnnl_.engine, DNNL_MEMORY_NONE);
            if (!pack_) p.b = memory(b_mds[i], dnnl_.engine, DNNL_MEMORY_NONE);
            p.y = memory(y_mds[i], dnnl_.engine, DNNL_MEMORY_NONE);
            if (bias) p.bias = memory(bias_mds[i], dnnl_.engine, DNNL_MEMORY_NONE);
            p.scratch = memory(p.pd.scratchpad_desc(), dnnl_.engine, DNNL_MEMORY_NONE);
            if (by_cols_ && pack_) {
                p.dense.resize(
                    static_cast<size_t>((cuts_[i].r1 - cuts_[i].r0) * (cuts_[i].c1 - cuts_[i].c0)));
            }
            parts_.push_back(std::move(p));
        }
        if (pack_) pack_b(ins[1].constant->raw());
        what_ = fmt::format("MatMul {}x{}{}{}{}{} [{}]{}", shape_str(ins[0].shape), shape_str(b),
                            bias ? " +bias" : "", fusion.matmul_nhwc ? " ->nhwc" : "",
                            scale_ ? " *scale" : "", residual_ ? " +residual" : "", impl,
                            parts_.size() > 1 ? fmt::format(" x{} {} chunks", parts_.size(),
                                                            by_cols_ ? "column" : "row")
                                              : "");
        return true;
    }

    // Reorders B (the planned constant, or weights a node override passes instead) into
    // every part's packed copy.
    void pack_b(const void* b) {
        for (size_t i = 0; i < parts_.size(); ++i) {
            Part& p = parts_[i];
            memory src(p.b_plain, dnnl_.engine,
                       const_cast<float*>(static_cast<const float*>(b) + cuts_[i].c0));
            dnnl::reorder(src, p.b_packed).execute(dnnl_.streams[0], src, p.b_packed);
        }
        dnnl_.streams[0].wait();
        packed_from_ = b;
    }

    Status run(std::span<const Tensor> in, std::span<Tensor> out, const ThreadPool& pool) override {
        const auto* a = static_cast<const float*>(in[0].raw());
        const auto* b = static_cast<const float*>(in[1].raw());
        if (pack_ && in[1].raw() != packed_from_) {
            // Other weights than the packed ones (a node override, or back to the planned
            // constant after one): pack those.
            try {
                pack_b(in[1].raw());
            } catch (const dnnl::error& e) {
                return error(StatusCode::Internal, "{}: oneDNN weight reorder failed: {}", what_,
                             e.what());
            }
        }
        auto* y = static_cast<float*>(out[0].raw());
        const auto* bias = has_bias_ ? static_cast<const float*>(in[2].raw()) : nullptr;
        const auto* scale = scale_ ? static_cast<const float*>(in[3].raw()) : nullptr;
        const auto* res = residual_ ? static_cast<const float*>(in[4].raw()) : nullptr;
        TaskFailure failure;
        auto one = [&](int64_t i, int thread) {
            Part& p = parts_[static_cast<size_t>(i)];
            const Cut& c = cuts_[static_cast<size_t>(i)];
            try {
                p.a.set_data_handle(const_cast<float*>(a + c.r0 * k_));
                if (!pack_) p.b.set_data_handle(const_cast<float*>(b + c.c0));
                float* dense = p.dense.empty() ? nullptr : p.dense.data();
                p.y.set_data_handle(dense ? dense : y + c.r0 * n_ + c.c0);
                auto& stream = dnnl_.streams[static_cast<size_t>(thread)];
                p.scratch.set_data_handle(dnnl_.data(Workspace::Scratchpad, thread));
                ExecArgs args;
                args.add(DNNL_ARG_SRC, p.a)
                    .add(DNNL_ARG_WEIGHTS, pack_ ? p.b_packed : p.b)
                    .add(DNNL_ARG_DST, p.y)
                    .add(DNNL_ARG_SCRATCHPAD, p.scratch);
                if (bias) {
                    p.bias.set_data_handle(const_cast<float*>(bias + c.c0));
                    args.add(DNNL_ARG_BIAS, p.bias);
                }
                args.execute(p.prim, stream);
                stream.wait();
                if (scale || res || dense) {
                    const int64_t w = c.c1 - c.c0;
                    for (int64_t r = c.r0; r < c.r1; ++r) {
                        float* yr = y + r * n_ + c.c0;
                        scale_add_row(yr, dense ? dense + (r - c.r0) * w : yr,
                                      scale ? scale + c.c0 : nullptr,
                                      res ? res + r * n_ + c.c0 : nullptr, w);
                    }
                }
            } catch (const dnnl::error& e) {
                failure.record(e);
            }
        };
        if (parts_.size() == 1) {
            one(0, 0);  // one call on the calling thread (pool thread 0)
        } else {
            pool.run(static_cast<int64_t>(parts_.size()), one);
        }
        if (failure) return failure.status(what_);
        return Status::ok();
    }

    std::string describe() const override { return what_; }

private:
    struct Part {
        dnnl::matmul::primitive_desc pd;
        dnnl::matmul prim;
        memory a, b, y, bias, scratch;  // each part runs on one thread at a time
        memory::desc b_plain;  // with pack_: this part's columns of the plain B
        memory b_packed;       // and the same in the primitive's format
        std::vector<float> dense;  // a column piece's product with pack_ (see init)
    };
    DnnlState& dnnl_;
    std::string what_;
    std::vector<Part> parts_;
    // Each part's rows of A and Y and columns of B and Y (chunked: A is [rows, K]).
    struct Cut {
        int64_t r0 = 0, r1 = 0, c0 = 0, c1 = 0;
    };
    std::vector<Cut> cuts_;
    int64_t k_ = 0, n_ = 0;  // chunked: A's and Y's row lengths
    bool by_cols_ = false;
    bool has_bias_ = false;
    bool scale_ = false, residual_ = false;  // the epilogue's layer scale and residual
    bool pack_ = false;                      // constant B, packed once (see init)
    const void* packed_from_ = nullptr;      // the weights the packed copies hold
};

}  // namespace

std::unique_ptr<FastOp> make_matmul(DnnlState& dnnl, const Node& node, std::span<const Operand> ins,
                                    const Operand& out, int n_threads, const ConvFusion& fusion,
                                    std::vector<std::string>& warnings) {
    const bool bias = fusion.matmul_bias;
    const bool epilogue = fusion.matmul_scale || fusion.matmul_residual;
    if (ins.size() != (epilogue ? 5u : bias ? 3u : 2u) || out.dtype != DType::Float32) {
        return nullptr;
    }
    if ((epilogue || fusion.matmul_nhwc) && !bias) return nullptr;
    if (bias && (ins[2].dtype != DType::Float32 || shape_numel(ins[2].shape) != out.shape.back())) {
        return nullptr;
    }
    if (fusion.matmul_nhwc && out.shape.size() != 4) return nullptr;
    if (fusion.matmul_scale &&
        (ins[3].dtype != DType::Float32 || shape_numel(ins[3].shape) != out.shape.back())) {
        return nullptr;
    }
    // The residual has the (transposed, with matmul_nhwc) product's elements, in its order.
    if (fusion.matmul_residual &&
        (ins[4].dtype != DType::Float32 || shape_numel(ins[4].shape) != shape_numel(out.shape))) {
        return nullptr;
    }
    for (const Operand& o : ins.first(2)) {
        if (o.dtype != DType::Float32 || o.shape.size() < 2 || o.shape.size() > 4) return nullptr;
    }
    if (out.shape.size() < 2 || out.shape.size() > 4 || shape_numel(out.shape) == 0) {
        return nullptr;
    }
    auto op = std::make_unique<MatMulOp>(dnnl);
    try {
        if (!op->init(node, ins, out, n_threads, fusion, warnings)) return nullptr;
    } catch (const dnnl::error&) {
        return nullptr;  // e.g. a broadcast pattern this oneDNN build rejects: reference kernel
    }
    return op;
}

}  // namespace lowbit::cpu
