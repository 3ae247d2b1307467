// Conv through oneDNN 2.6 (research/engine-perf.md: 90-98% of the FMA peak with
// format_tag::any, which picks NHWC activations and blocked weights on this CPU).
//
// Plan time: X and Y are stored NHWC, the weights in whatever format oneDNN prefers; the
// constant weights are reordered into it once. If oneDNN offers only a reference
// implementation (1000x slower), the op is not created and the executor keeps lowbit's
// reference Conv.
//
// Winograd: dense 3x3 stride-1 convs of 40 channels or more (kWinogradMinChannels) use
// oneDNN's jit_wino_4x3 (F(4x4, 3x3)) when it accepts the shape. Measured here it is 2.1-3.4x
// faster than the direct brgconv on YOLOv10m's 3x3 layers, with no loss of accuracy: max
// error 1.1e-6 of the output magnitude against a double precision reference, vs 1.7e-6 for
// the direct conv (192 channels, 40x40). It works on
// blocked (nChw16c) tensors, so each chunk is reordered in and out of a per-thread buffer,
// which costs 1-3% of the conv. Below about 128 channels oneDNN picks jit_wino_2x3
// (F(2x2, 3x3)), which takes only equal top and bottom padding; row chunks then compute a few
// padded rows they drop (make_chunks). ExecutorOptions::conv_winograd = false (the CLI:
// LOWBIT_CONV_WINOGRAD=0) turns it off.
//
// Threads: with more than one thread the output rows are cut into chunks, each a one-thread
// primitive over a contiguous slice of the NHWC input and output (a band of rows is contiguous
// in NHWC; the chunk's own top/bottom padding replaces the rows outside it). Convs on small maps
// whose weights outweigh their input, and direct convs with big weights at any thread count,
// are cut into ranges of output channels instead, over all rows (plan_chunks says when). The chunks
// run as ThreadPool tasks, so a thread the OS schedules late never stalls the conv
// (core/thread_pool.h). A chunk's primitive must use the whole conv's implementation, except
// in Winograd convs cut into the same 8-row bands at every thread count (their input outweighs
// their weights), where each band runs on whichever Winograd kernel oneDNN picks for it;
// executor_fast_test.cpp checks that Winograd row chunks, those bands and channel chunks give
// one thread's outputs bit for bit.
//
// Epilogue, per chunk while its rows are in cache: SiLU (x * sigmoid(x), which Ultralytics
// exports as Conv -> Sigmoid -> Mul) by a vectorized pass (oneDNN 2.6's eltwise_swish post-op
// costs about a cycle per element and doubles depthwise and stem convs, research/engine-perf.md),
// a residual Add, and copies into channel-range outputs (a folded Split) and concat slices.
//
// Node overrides that hand the op other weights than the planned constant (fake-quantized
// copies, for sensitivity) are honoured: those weights are reordered for that call.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <tuple>

#include "runtime/engine_info.h"
#include "runtime/kernels/cpu/conv_routing.h"
#include "runtime/kernels/cpu/dnnl_state.h"
#include "runtime/kernels/cpu/ops.h"
#include "runtime/kernels/cpu/vmath.h"

namespace lowbit::cpu {
namespace {

using dnnl::memory;
using Tag = dnnl::memory::format_tag;
using DT = dnnl::memory::data_type;

// Below this much work a chunk costs more in call overhead than it gains: ~20 us of one core.
constexpr double kMinChunkSeconds = 20e-6;
// Throughputs used only to size chunks; depthwise convs are bound by memory traffic. Dense
// convs reach ~250 GFLOP/s on big layers (research/engine-perf.md) but ~50 on the bundled
// model's 12-144 channel layers (65 ms for its 5.2 GFLOP at one thread); at 200e9 most of
// those layers came out under two chunks' work and ran on one thread at --threads 2.
constexpr double kFlopsPerSecond = 50e9;
constexpr double kBytesPerSecond = 20e9;
// Chunk output size with several threads: a quarter of this CPU's 1 MiB L2.
constexpr double kChunkOutBytes = 256.0 * 1024;
// Row chunks whose busiest thread works this much longer than an even share count as uneven.
constexpr double kMaxRowImbalance = 1.05;
// Winograd only where both channel counts reach this. Measured per layer (cpu ms, one and two
// threads, Winograd vs direct brgconv): 3->20, 12, 20, 24 and 20<->40 channel layers 1.1-3.8x
// slower with Winograd (it pads channels to 16s and its transforms cost more than the
// multiplications they save), 40->40 0.92x, 48 and up 0.52-0.92x (bundled YOLOv10m, the
// full-width one, unet-tiny, single-conv stacks of 16-256 channels).
constexpr int64_t kWinogradMinChannels = 40;
// Output rows of a Winograd tile: chunks start on multiples of it (F(4x4, 3x3) and, a
// multiple of it, F(2x2, 3x3)).
constexpr int64_t kWinoTileRows = 4;
// Winograd convs whose input outweighs their weights are cut into row chunks of about this
// many tiles at every thread count (plan_chunks).
constexpr int64_t kWinoChunkTiles = 2;
// Direct dense convs with a kernel above 1x1 and more weights than the per-core L2 cache (and
// at least a quarter of their input) run as channel chunks at any thread count, each with at
// most this share of L2 in weights but at least kBigConvMinChunkChannels and at most
// kBigConvMaxChunkChannels output channels (plan_chunks).
constexpr double kBigConvChunkL2Share = 0.6;
constexpr int64_t kBigConvMinChunkChannels = 64;
constexpr int64_t kBigConvMaxChunkChannels = 160;

struct Chunk {
    int64_t oh0 = 0, oh1 = 0;  // output rows
    int64_t ih0 = 0;           // first input row read
    size_t part = 0;           // index into ConvOp::parts_
    int64_t oc0 = 0, oc1 = 0;  // output channels
    size_t wei = 0;            // index into ConvOp::weights_
    // NHWC views of the chunk's input and output rows, made once; run() only points them at
    // the tensors (each chunk runs on one thread at a time).
    memory src, dst, bias;
};

class ConvOp final : public FastOp {
public:
    explicit ConvOp(DnnlState& dnnl) : dnnl_(dnnl) {}

    Status init(const Node& node, std::span<const Operand> ins, const Operand& out,
                ConvFusion fusion, int n_threads, std::vector<std::string>& warnings) {
        x_ = ins[0].shape;
        y_ = out.shape;
        const Shape& wt = ins[1].shape;
        group_ = node.attr_int("group", 1);
        if (!window_2d(node, x_, y_, {wt[2], wt[3]}, h_, w_)) {
            return unsupported("{}: attributes outside the fast path", node.describe());
        }
        silu_ = fusion.silu;
        residual_ = fusion.residual;
        relu_ = fusion.relu;
        hardswish_ = fusion.hardswish;
        hardsigmoid_ = fusion.hardsigmoid;
        relu_after_ = fusion.relu_after;
        hs_alpha_ = fusion.hs_alpha;
        hs_beta_ = fusion.hs_beta;
        has_bias_ = ins.size() > 2 && ins[2].present();
        if (fusion.bn) {
            // The BatchNormalization folded in: W'[m] = W[m] * scale[m],
            // B'[m] = B[m] * scale[m] + shift[m] (B = 0 when absent).
            if (fusion.bn->scale.size() != static_cast<size_t>(y_[1])) {
                return unsupported("{}: BatchNormalization of another channel count",
                                   node.describe());
            }
            bn_ = *fusion.bn;
            folded_bias_.resize(static_cast<size_t>(y_[1]));
            for (size_t k = 0; k < folded_bias_.size(); ++k) {
                const float b = has_bias_ ? ins[2].constant->data<float>()[k] : 0.0f;
                folded_bias_[k] = b * bn_.scale[k] + bn_.shift[k];
            }
            has_bias_ = true;
        }
        n_threads_ = std::max(1, n_threads);
        if (group_ == 1) {
            wei_dims_ = {wt[0], wt[1], wt[2], wt[3]};
            user_wei_md_ = memory::desc(wei_dims_, DT::f32, Tag::oihw);
        } else {
            wei_dims_ = {group_, wt[0] / group_, wt[1], wt[2], wt[3]};
            user_wei_md_ = memory::desc(wei_dims_, DT::f32, Tag::goihw);
        }

        const bool wino_shape = group_ == 1 && h_.k == 3 && w_.k == 3 && h_.stride == 1 &&
                                w_.stride == 1 && h_.dilation == 1 && w_.dilation == 1 &&
                                x_[1] >= kWinogradMinChannels && y_[1] >= kWinogradMinChannels;
        dnnl::convolution_forward::primitive_desc whole;
        if (wino_shape && dnnl_.conv_winograd) {
            try {
                whole = make_pd(x_[2], h_.pad_begin, h_.pad_end, y_[2], true, y_[1]);
                winograd_ = std::string(whole.impl_info_str()).find("wino") != std::string::npos;
            } catch (const dnnl::error&) {
                winograd_ = false;  // shape not supported (e.g. channels not a multiple of 16)
            }
        }
        if (!winograd_) whole = make_pd(x_[2], h_.pad_begin, h_.pad_end, y_[2], false, y_[1]);
        impl_ = whole.impl_info_str();
        if (is_dnnl_ref_impl(impl_)) {
            warnings.push_back(fmt::format(
                "{}: oneDNN has only the reference implementation '{}' for input {} weights {}; "
                "using lowbit's reference Conv",
                node.describe(), impl_, shape_str(x_), shape_str(wt)));
            return unsupported("reference implementation");
        }
        plan_chunks(whole);
        routing_.reset(y_[1]);

        planned_w_ = ins[1].constant->raw();
        weights_ = reorder_weights(planned_w_);
        what_ = fmt::format("Conv {}x{} s{}{} [{}]{}{}{}{}{}{}", wt[2], wt[3], h_.stride,
                            group_ == 1 ? "" : (group_ == x_[1] ? " dw" : " grouped"), impl_,
                            bn_.scale.empty() ? "" : " +BN", silu_ ? " +SiLU" : "",
                            relu_ ? " +Relu" : "", hardswish_ ? " +HardSwish" : "",
                            hardsigmoid_ ? " +HardSigmoid" : "",
                            residual_ ? (relu_after_ ? " +Add +Relu" : " +Add") : "");
        if (oc_chunks_) what_ += fmt::format(" x{} channel chunks", chunks_.size());
        if (!chunk_impls_.empty()) {
            what_ += fmt::format(" (some row chunks on {})", fmt::join(chunk_impls_, ", "));
        }
        return Status::ok();
    }

    Status run(std::span<const Tensor> in, std::span<Tensor> out, const ThreadPool& pool) override {
        // The planned weights, or (a node override replaced them) these weights reordered now.
        const std::vector<memory>* wei = &weights_;
        std::vector<memory> replaced;
        try {
            if (in[1].raw() != planned_w_) {
                replaced = reorder_weights(in[1].raw());
                wei = &replaced;
            }
        } catch (const dnnl::error& e) {
            return error(StatusCode::Internal, "{}: oneDNN weight reorder failed: {}", what_,
                         e.what());
        }
        const auto* x = static_cast<const char*>(in[0].raw());
        auto* y = static_cast<char*>(out[0].raw());
        void* bias = !has_bias_           ? nullptr
                     : bn_.scale.empty()  ? const_cast<void*>(in[2].raw())
                                          : static_cast<void*>(folded_bias_.data());
        const auto* res = residual_ ? static_cast<const char*>(in[3].raw()) : nullptr;
        const int64_t x_image = x_[1] * x_[2] * x_[3] * 4;  // bytes per NHWC image
        const int64_t y_image = y_[1] * y_[2] * y_[3] * 4;
        const int64_t x_row = x_[1] * x_[3] * 4;
        const int64_t y_row = y_[1] * y_[3] * 4;
        const int64_t n_chunks = static_cast<int64_t>(chunks_.size());
        TaskFailure failure;
        // One task per chunk (all images of the batch): a chunk's memory objects are then
        // only ever touched by one thread at a time.
        pool.run(n_chunks, [&](int64_t task, int thread) {
            Chunk& c = chunks_[static_cast<size_t>(task)];
            const Part& part = parts_[c.part];
            const auto t = static_cast<size_t>(thread);
            for (int64_t b = 0; b < x_[0]; ++b) {
                // A chunk of output channels computes into a dense buffer of its own.
                char* dst = routing_.dense() && !oc_chunks_
                                ? y + b * y_image + c.oh0 * y_row
                                : static_cast<char*>(dnnl_.data(Workspace::ChunkOut, thread));
                try {
                    c.src.set_data_handle(const_cast<char*>(x + b * x_image + c.ih0 * x_row));
                    c.dst.set_data_handle(dst);
                    auto& stream = dnnl_.streams[t];
                    // Workspaces are fetched now: a later plan may have reallocated them.
                    memory src = c.src, out_mem = c.dst;
                    if (part.blocked_src) {
                        src = part.src_blk[t];
                        src.set_data_handle(dnnl_.data(Workspace::BlockedSrc, thread));
                        part.to_blocked.execute(stream, c.src, src);
                    }
                    memory kept;  // the rows of out_mem that this chunk keeps
                    if (part.blocked_dst) {
                        out_mem = part.dst_blk[t];
                        kept = part.dst_kept[t];
                        out_mem.set_data_handle(dnnl_.data(Workspace::BlockedDst, thread));
                        kept.set_data_handle(out_mem.get_data_handle());
                    }
                    part.scratch[t].set_data_handle(dnnl_.data(Workspace::Scratchpad, thread));
                    ExecArgs args;
                    args.add(DNNL_ARG_SRC, src)
                        .add(DNNL_ARG_WEIGHTS, (*wei)[c.wei])
                        .add(DNNL_ARG_DST, out_mem)
                        .add(DNNL_ARG_SCRATCHPAD, part.scratch[t]);
                    if (bias) {
                        c.bias.set_data_handle(static_cast<float*>(bias) + c.oc0);
                        args.add(DNNL_ARG_BIAS, c.bias);
                    }
                    args.execute(part.prim, stream);
                    if (part.blocked_dst) part.from_blocked.execute(stream, kept, c.dst);
                    stream.wait();
                } catch (const dnnl::error& e) {
                    failure.record(e);
                    return;
                }
                const int64_t p0 = (b * y_[2] + c.oh0) * y_[3];
                const int64_t pixels = (c.oh1 - c.oh0) * y_[3];
                const auto* r =
                    res ? reinterpret_cast<const float*>(res) + p0 * y_[1] + c.oc0 : nullptr;
                const int64_t width = c.oc1 - c.oc0;
                epilogue(reinterpret_cast<float*>(dst), width, r, y_[1], pixels, width);
                if (oc_chunks_ && routing_.dense()) {
                    copy_channel_rows(dst, width, y + (p0 * y_[1] + c.oc0) * 4, y_[1], pixels,
                                      width, 4);
                }
                // Channel-range outputs (a Split folded into this conv) and concat slices.
                routing_.copy_channel_block(dst, width, c.oc0, c.oc1, out, p0, pixels, 4);
            }
        });
        if (failure) return failure.status(what_);
        return Status::ok();
    }

    std::string describe() const override { return what_ + routing_.suffix(); }

    bool add_concat_slice(size_t out, size_t slot, int64_t offset, int64_t total,
                          bool keep_dense) override {
        if (!routing_.add_concat_slice(out, slot, offset, total)) return false;
        if (!keep_dense) drop_dense(out);
        return true;
    }

    bool add_channel_range_output(size_t out, size_t slot, int64_t c0, int64_t c1) override {
        return routing_.add_channel_range(out, slot, c0, c1);
    }

    void drop_dense(size_t out) override {
        // The conv result then only lives in a per-thread chunk buffer until the epilogue has
        // written it to its other destinations.
        if (!routing_.drop_dense(out)) return;
        int64_t rows = 0;
        for (const Chunk& c : chunks_) rows = std::max(rows, c.oh1 - c.oh0);
        dnnl_.reserve(Workspace::ChunkOut, static_cast<size_t>(rows * y_[1] * y_[3]) * 4);
    }

private:
    // One primitive per distinct chunk geometry.
    struct Part {
        dnnl::convolution_forward::primitive_desc pd;
        dnnl::convolution_forward prim;
        std::vector<memory> scratch;  // per pool thread; data set at run time
        // Winograd works on blocked tensors: the chunk is reordered in and out of per-thread
        // buffers.
        bool blocked_src = false, blocked_dst = false;
        dnnl::reorder to_blocked, from_blocked;
        // Per pool thread, data set at run time: the blocked input and output, and the view of
        // the output rows the chunk keeps (from_blocked's source).
        std::vector<memory> src_blk, dst_blk, dst_kept;
        // The primitive may compute rows the chunk does not keep (make_chunks): it keeps
        // `keep` rows from row `skip` of the primitive's output.
        int64_t skip = 0, keep = 0;
    };

    memory::desc nhwc_src(int64_t rows) const {
        return memory::desc({1, x_[1], rows, x_[3]}, DT::f32, Tag::nhwc);
    }
    // `oc` output channels (a chunk of them, or all).
    memory::desc nhwc_dst(int64_t rows, int64_t oc) const {
        return memory::desc({1, oc, rows, y_[3]}, DT::f32, Tag::nhwc);
    }

    // The primitive for `in_rows` input rows (with the given vertical padding) producing
    // `out_rows` output rows of `oc` output channels, batch 1. Direct convs read and write NHWC;
    // Winograd picks its own (blocked) layouts.
    dnnl::convolution_forward::primitive_desc make_pd(int64_t in_rows, int64_t pad_top,
                                                      int64_t pad_bottom, int64_t out_rows,
                                                      bool winograd, int64_t oc) const {
        const memory::desc src_md =
            winograd ? memory::desc({1, x_[1], in_rows, x_[3]}, DT::f32, Tag::any)
                     : nhwc_src(in_rows);
        const memory::desc dst_md = winograd
                                        ? memory::desc({1, oc, out_rows, y_[3]}, DT::f32, Tag::any)
                                        : nhwc_dst(out_rows, oc);
        memory::dims wei_dims = wei_dims_;
        wei_dims[group_ == 1 ? 0 : 1] = group_ == 1 ? oc : oc / group_;
        const memory::desc wei_md(wei_dims, DT::f32, Tag::any);
        const memory::desc bias_md({oc}, DT::f32, Tag::x);
        // oneDNN counts dilation from 0 (no dilation), ONNX from 1.
        const memory::dims strides = {h_.stride, w_.stride};
        const memory::dims dilates = {h_.dilation - 1, w_.dilation - 1};
        const memory::dims pad_l = {pad_top, w_.pad_begin};
        const memory::dims pad_r = {pad_bottom, w_.pad_end};
        dnnl::primitive_attr attr;
        attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
        const auto kind = dnnl::prop_kind::forward_inference;
        const auto alg =
            winograd ? dnnl::algorithm::convolution_winograd : dnnl::algorithm::convolution_direct;
        auto desc = has_bias_
                        ? dnnl::convolution_forward::desc(kind, alg, src_md, wei_md, bias_md,
                                                          dst_md, strides, dilates, pad_l, pad_r)
                        : dnnl::convolution_forward::desc(kind, alg, src_md, wei_md, dst_md,
                                                          strides, dilates, pad_l, pad_r);
        return dnnl::convolution_forward::primitive_desc(desc, attr, dnnl_.engine);
    }

    // Splits the output rows into chunks sized for the pool threads and builds one primitive
    // per distinct chunk geometry. Falls back to a single chunk when a chunk primitive would
    // use another implementation.
    void plan_chunks(const dnnl::convolution_forward::primitive_desc& whole) {
        const int64_t oh = y_[2];
        const double flops = 2.0 * static_cast<double>(y_[1] * oh * y_[3]) *
                             static_cast<double>(x_[1] / group_ * h_.k * w_.k);
        const double bytes = 4.0 * static_cast<double>(x_[1] * x_[2] * x_[3] + y_[1] * oh * y_[3]);
        const double seconds = std::max(flops / kFlopsPerSecond, bytes / kBytesPerSecond);
        // With several threads: at least four chunks per thread (slack for a thread that starts
        // late) and chunks whose output fits in a quarter of L2, so the epilogue reads it from
        // cache (measured 6% faster for YOLOv10m at 2 threads than 4 chunks per thread), but
        // none below kMinChunkSeconds of work; for direct convs preferably a multiple of the
        // thread count that divides the rows evenly, so that the threads finish together (a
        // 20-row map cut into 3,3,...,2 rows leaves one thread a chunk behind). One thread:
        // one chunk (smaller chunks measured no faster there).
        const int64_t t = n_threads_;
        const double out_bytes = 4.0 * static_cast<double>(y_[1] * oh * y_[3]);
        const auto by_cache = static_cast<int64_t>(std::ceil(out_bytes / kChunkOutBytes));
        int64_t n = t == 1 ? 1
                           : std::clamp<int64_t>(static_cast<int64_t>(seconds / kMinChunkSeconds),
                                                 1, std::max<int64_t>(4 * t, by_cache));
        n = std::min(n, oh);
        // Pointwise convs: one chunk per thread. Each chunk streams the whole weight matrix
        // (up to 576 x 576 floats here), and fewer, larger chunks measured 6% faster for
        // YOLOv10m at 2 threads.
        if (h_.k == 1 && w_.k == 1 && group_ == 1) n = std::min(n, t);
        // Depthwise convs between one and two chunks' work (14x14 and 7x7 maps of MobileNetV3
        // and EfficientNet-B0, 20-40 us): one chunk per thread rather than one thread.
        if (t > 1 && n == 1 && group_ == x_[1] && seconds >= kMinChunkSeconds) {
            n = std::min(t, oh);
        }
        std::vector<int64_t> bounds;  // chunk i covers output rows [bounds[i], bounds[i + 1])
        const double w_bytes = 4.0 * static_cast<double>(y_[1] * x_[1] / group_ * h_.k * w_.k);
        const double x_bytes = 4.0 * static_cast<double>(x_[1] * x_[2] * x_[3]);
        const int64_t tiles = (oh + kWinoTileRows - 1) / kWinoTileRows;
        // Winograd convs whose input outweighs their weights: row chunks of kWinoChunkTiles
        // tiles (the spare tile to the first chunks), the same at every thread count, each on
        // whichever of oneDNN's Winograd kernels it gets. oneDNN picks F(2x2, 3x3) for some
        // whole maps where it picks F(4x4, 3x3) for their 8-row bands (128 channels at 40x40:
        // YOLO11m's and YOLOv8m's middle stages), and F(4x4, 3x3) did the same work in 0.6-0.75
        // of the time; as one chunk such a conv also ran on one thread at --threads 2, since
        // row chunks had to keep the whole conv's kernel. The plan does not depend on the
        // thread count, so every thread count computes the same bits. (Maps of a few tiles
        // keep the plans below: their weights outweigh their input.)
        any_winograd_ = winograd_ && w_bytes < x_bytes && tiles >= 2 * kWinoChunkTiles;
        if (any_winograd_) {
            n = tiles / kWinoChunkTiles;
            for (int64_t i = n; i >= 0; --i) {
                bounds.push_back(std::min(oh, kWinoTileRows * (tiles - tiles * i / n)));
            }
        } else if (winograd_) {
            // At most two chunks per thread (each pays its own layout reorders; 2 per thread
            // measured 5% faster than 4 for YOLOv10m at 2 threads), cut on the 4-row
            // boundaries of Winograd's 4x4 output tiles, tiles spread evenly, bigger chunks
            // first (a 20-row map: 8, 4, 4, 4 rows rather than 5, 5, 5, 5, which computes 8
            // tiles rows instead of 5).
            n = std::min({n, 2 * t, tiles});
            for (int64_t i = n; i >= 0; --i) {
                bounds.push_back(std::min(oh, kWinoTileRows * (tiles - tiles * i / n)));
            }
        } else {
            if (n >= t && t > 1) {
                int64_t even = 0;
                for (int64_t k = n / t; k >= 1 && even == 0; --k) {
                    if (oh % (k * t) == 0) even = k * t;
                }
                n = even > 0 ? even : n / t * t;
            }
            // Row counts differ by at most one between chunks.
            for (int64_t i = 0; i <= n; ++i) bounds.push_back(oh * i / n);
        }
        // Channel chunks instead (make_oc_chunks) for dense convs whose weights outweigh their
        // input, when the row chunks above are Winograd's (each chunk streams the transformed
        // weights and computes padded tile rows it drops: ResNet-50's 14x14 and 7x7 stages ran
        // at 0.75-0.83 of the one-thread time at 2 threads, YOLOv8m's 20x20 and 40x40 ones at
        // 0.8-1.08; 0.52-0.66 as channel chunks) or leave one thread more rows than the other
        // (7-row maps, 1-row squeeze-excitation maps). Evenly cut direct convs stay on rows:
        // there channel chunks measured the same or up to 0.07 of the conv slower (the copy of
        // the result from the chunk buffer). Channel chunks each read their share of the
        // weights, so the weights count as work here: a squeeze-excitation conv on a 1x1 map
        // (MobileNetV3's 240 -> 960) is mostly weights.
        const double oc_seconds = std::max(seconds, (bytes + w_bytes) / kBytesPerSecond);
        const int64_t n_oc =
            std::min<int64_t>(t, static_cast<int64_t>(oc_seconds / kMinChunkSeconds));
        // Big direct convs (weights beyond the per-core L2): channel chunks whose weights stay
        // in L2 while they sweep the rows, a multiple of the thread count, at one thread too.
        // oneDNN 2.6's brgconv ran YOLO11m's 512->512 3x3 stride-2 conv (80x80 input, 9.4 MB
        // of weights) at 72-79 GFLOP/s on an AMD EPYC (Zen 4, 1 MiB L2), as four 128-channel
        // primitives at 107-110 (one thread; 576 channels 96 -> 108). On a Sapphire Rapids
        // (2 MiB L2), paired rounds against those 160-channel-at-most chunks: 64-channel
        // chunks (1.2 MB of weights each) took 0.81-0.88 of the time for 512->512 and 576->576
        // stride 2 at 80x80 and 40x40 inputs (1 and 2 threads), 256->512 at 80x80 (4.7 MB,
        // not chunked before) 0.88-0.94 as 128-channel chunks, 128->256 (1.2 MB) no gain, and
        // 512->512 at 7x7 none. Each chunk reads the whole input, hence the 64-channel floor,
        // and maps whose input is over four times the weights stay on rows (256->256 at 160x160,
        // 26 MB of input and 2.4 MB of weights: 1.00-1.06 as two chunks).
        const double l2 = static_cast<double>(l2_cache_bytes());
        const bool big = !winograd_ && group_ == 1 && (h_.k > 1 || w_.k > 1) && w_bytes > l2 &&
                         4.0 * w_bytes >= x_bytes;
        const double w_channel = w_bytes / static_cast<double>(y_[1]);
        const int64_t chunk_channels = std::clamp<int64_t>(
            static_cast<int64_t>(kBigConvChunkL2Share * l2 / w_channel) / 16 * 16,
            kBigConvMinChunkChannels, kBigConvMaxChunkChannels);
        const int64_t n_big = (y_[1] + chunk_channels * t - 1) / (chunk_channels * t) * t;
        if (any_winograd_) {
            // row chunks, planned above
        } else if (big && make_oc_chunks(n_big)) {
            n = static_cast<int64_t>(chunks_.size());
        } else if (t > 1 && group_ == 1 && n_oc > 1 && w_bytes >= x_bytes &&
                   (winograd_ || row_imbalance(bounds, t) > kMaxRowImbalance) &&
                   make_oc_chunks(n_oc)) {
            n = static_cast<int64_t>(chunks_.size());
        }
        if (n > 1 && !oc_chunks_ && !make_chunks(bounds)) n = 1;
        if (n == 1) {
            chunk_impls_.clear();
            parts_.clear();
            chunks_ = {Chunk{0, oh, 0, 0, 0, y_[1], 0, {}, {}, {}}};
            add_part(whole, 0, oh);
        }
        for (Part& p : parts_) {
            dnnl_.reserve(Workspace::Scratchpad, p.pd.scratchpad_desc().get_size());
            if (p.blocked_src) dnnl_.reserve(Workspace::BlockedSrc, p.pd.src_desc().get_size());
            if (p.blocked_dst) dnnl_.reserve(Workspace::BlockedDst, p.pd.dst_desc().get_size());
            for (int th = 0; th < t; ++th) {
                p.scratch.push_back(memory(p.pd.scratchpad_desc(), dnnl_.engine, DNNL_MEMORY_NONE));
                if (p.blocked_src) {
                    p.src_blk.push_back(memory(p.pd.src_desc(), dnnl_.engine, DNNL_MEMORY_NONE));
                }
                if (p.blocked_dst) {
                    p.dst_blk.push_back(memory(p.pd.dst_desc(), dnnl_.engine, DNNL_MEMORY_NONE));
                    p.dst_kept.push_back(memory(kept_desc(p), dnnl_.engine, DNNL_MEMORY_NONE));
                }
            }
        }
        int64_t widest = 0;
        for (Chunk& c : chunks_) {
            c.wei = weight_slice(parts_[c.part].pd.weights_desc(), c.oc0, c.oc1);
            widest = std::max(widest, c.oc1 - c.oc0);
            c.src = memory(nhwc_src(parts_[c.part].pd.src_desc().dims()[2]), dnnl_.engine,
                           DNNL_MEMORY_NONE);
            c.dst = memory(nhwc_dst(c.oh1 - c.oh0, c.oc1 - c.oc0), dnnl_.engine, DNNL_MEMORY_NONE);
            if (has_bias_) {
                c.bias = memory(parts_[c.part].pd.bias_desc(), dnnl_.engine, DNNL_MEMORY_NONE);
            }
        }
        if (oc_chunks_) {
            dnnl_.reserve(Workspace::ChunkOut, static_cast<size_t>(widest * oh * y_[3]) * 4);
        }
    }

    // How much longer than an even share the busiest of `t` threads works when the row chunks
    // `bounds` are claimed in order (each by the thread with the fewest rows so far): 1 = even.
    static double row_imbalance(const std::vector<int64_t>& bounds, int64_t t) {
        std::vector<int64_t> rows(static_cast<size_t>(t), 0);
        for (size_t i = 0; i + 1 < bounds.size(); ++i) {
            *std::min_element(rows.begin(), rows.end()) += bounds[i + 1] - bounds[i];
        }
        const double total = static_cast<double>(bounds.back() - bounds.front());
        return static_cast<double>(*std::max_element(rows.begin(), rows.end())) *
               static_cast<double>(t) / total;
    }

    // With several threads, a conv whose weights outweigh its input (small maps: ResNet-50's
    // 7x7 and 14x14 stages) is cut into `n` ranges of output channels over all rows instead of
    // row chunks: row chunks each stream the whole weights (and a 7-row map cannot be cut
    // evenly in two), channel chunks each read the whole input but only their weights. The
    // ranges are multiples of 16 channels (oneDNN's block); each chunk computes into a dense
    // per-thread buffer (oneDNN's direct convs take only dense NHWC outputs) and the epilogue
    // writes its channels into the output. False when a chunk's primitive would use another
    // implementation than the whole conv's.
    bool make_oc_chunks(int64_t n) {
        const int64_t blocks = y_[1] / 16;
        if (n < 2 || blocks < n) return false;
        std::map<int64_t, size_t> part_of;  // by width
        for (int64_t i = 0; i < n; ++i) {
            const int64_t oc0 = 16 * (blocks * i / n);
            const int64_t oc1 = i + 1 == n ? y_[1] : 16 * (blocks * (i + 1) / n);
            auto it = part_of.find(oc1 - oc0);
            if (it == part_of.end()) {
                dnnl::convolution_forward::primitive_desc pd;
                try {
                    pd = make_pd(x_[2], h_.pad_begin, h_.pad_end, y_[2], winograd_, oc1 - oc0);
                } catch (const dnnl::error&) {
                    pd = {};
                }
                if (!pd || pd.impl_info_str() != impl_ || !add_part(pd, 0, y_[2])) {
                    parts_.clear();
                    chunks_.clear();
                    return false;
                }
                it = part_of.emplace(oc1 - oc0, parts_.size() - 1).first;
            }
            chunks_.push_back(Chunk{0, y_[2], 0, it->second, oc0, oc1, 0, {}, {}, {}});
        }
        oc_chunks_ = true;
        return true;
    }

    // The index in weights_ of the weights of output channels [oc0, oc1) in format `md`.
    size_t weight_slice(const memory::desc& md, int64_t oc0, int64_t oc1) {
        for (size_t i = 0; i < wei_slices_.size(); ++i) {
            const WeightSlice& w = wei_slices_[i];
            if (w.md == md && w.oc0 == oc0 && w.oc1 == oc1) return i;
        }
        wei_slices_.push_back({md, oc0, oc1});
        return wei_slices_.size() - 1;
    }

    // The rows [skip, skip + keep) of the part's (blocked) output.
    static memory::desc kept_desc(const Part& p) {
        const memory::dims d = p.pd.dst_desc().dims();
        return p.pd.dst_desc().submemory_desc({d[0], d[1], p.keep, d[3]}, {0, 0, p.skip, 0});
    }

    // Registers a primitive that keeps `keep` output rows from row `skip`; weights formats are
    // shared between parts that agree. False when rows are to be dropped from an output that
    // is not blocked (the primitive writes the chunk's NHWC rows directly then).
    bool add_part(const dnnl::convolution_forward::primitive_desc& pd, int64_t skip, int64_t keep) {
        Part p;
        p.pd = pd;
        p.skip = skip;
        p.keep = keep;
        const memory::dims d = pd.src_desc().dims();
        const int64_t oc = pd.dst_desc().dims()[1];
        const memory::desc src_plain = nhwc_src(d[2]);
        const memory::desc dst_plain = nhwc_dst(keep, oc);
        p.blocked_src = pd.src_desc() != src_plain;
        p.blocked_dst = pd.dst_desc() != nhwc_dst(pd.dst_desc().dims()[2], oc);
        if (!p.blocked_dst && (skip != 0 || keep != pd.dst_desc().dims()[2])) return false;
        p.prim = dnnl::convolution_forward(pd);
        if (p.blocked_src) {
            p.to_blocked = dnnl::reorder(dnnl::reorder::primitive_desc(
                dnnl_.engine, src_plain, dnnl_.engine, pd.src_desc()));
        }
        if (p.blocked_dst) {
            p.from_blocked = dnnl::reorder(
                dnnl::reorder::primitive_desc(dnnl_.engine, kept_desc(p), dnnl_.engine, dst_plain));
        }
        parts_.push_back(std::move(p));
        return true;
    }

    // One chunk's primitive geometry: input rows [ih0, ih0 + in_rows) with that vertical
    // padding produce out_rows rows, of which the chunk keeps `keep` from row `skip`.
    struct Geometry {
        int64_t ih0 = 0, in_rows = 0, pad_top = 0, pad_bottom = 0, out_rows = 0, skip = 0;
        int64_t keep = 0;
        auto key() const {
            return std::make_tuple(in_rows, pad_top, pad_bottom, out_rows, skip, keep);
        }
    };

    // The rows a chunk needs for output rows [oh0, oh1), the rows outside the input as padding
    // (different at the top and the bottom for the first and last chunks).
    Geometry natural_geometry(int64_t oh0, int64_t oh1) const {
        const int64_t extent = (h_.k - 1) * h_.dilation + 1;
        const int64_t first = oh0 * h_.stride - h_.pad_begin;  // may be negative (padding)
        const int64_t last = (oh1 - 1) * h_.stride - h_.pad_begin + extent;  // exclusive
        Geometry g;
        g.ih0 = std::max<int64_t>(0, first);
        g.in_rows = std::min(x_[2], last) - g.ih0;
        g.pad_top = g.ih0 - first;
        g.pad_bottom = last - std::min(x_[2], last);
        g.out_rows = g.keep = oh1 - oh0;
        return g;
    }

    // The same chunk with equal top and bottom padding, for oneDNN's Winograd F(2x2, 3x3)
    // (jit_wino_2x3), which takes only that. It then computes rows it does not keep: the
    // first chunk (more padding at the top) gets padding rows at the bottom too and computes
    // extra rows after its own, from that padding; the last chunk starts `skip` rows earlier
    // (the tile height, so that its tiles cover the same rows as one-thread Winograd's and
    // the results are identical), reading skip - pad_top more input rows. False when the
    // input has no such rows (a chunk too close to the top).
    bool symmetric_geometry(Geometry& g) const {
        if (g.pad_top > g.pad_bottom) {
            g.out_rows += g.pad_top - g.pad_bottom;
            g.pad_bottom = g.pad_top;
            return true;
        }
        if (g.pad_bottom > g.pad_top) {
            const int64_t tile = impl_.find("_2x3") != std::string::npos ? 2 : kWinoTileRows;
            const int64_t skip = (g.pad_bottom + tile - 1) / tile * tile;
            const int64_t more = skip - (g.pad_bottom - g.pad_top);  // real rows read first
            if (h_.stride != 1 || g.ih0 < more) return false;
            g.ih0 -= more;
            g.in_rows += more;
            g.pad_top = g.pad_bottom;
            g.out_rows += skip;
            g.skip = skip;
        }
        return true;
    }

    // One chunk per [bounds[i], bounds[i + 1]) of output rows; false when a chunk primitive
    // would use another implementation than the whole conv's.
    bool make_chunks(const std::vector<int64_t>& bounds) {
        std::map<decltype(Geometry{}.key()), size_t> part_of;
        for (size_t i = 0; i + 1 < bounds.size(); ++i) {
            const int64_t oh0 = bounds[i];
            const int64_t oh1 = bounds[i + 1];
            if (oh1 <= oh0) return false;
            Geometry g = natural_geometry(oh0, oh1);
            if (g.in_rows <= 0) return false;
            auto it = part_of.find(g.key());
            if (it == part_of.end()) {
                if (!accepts(g)) {
                    if (!winograd_ || !symmetric_geometry(g)) return false;
                    it = part_of.find(g.key());
                    if (it == part_of.end() && !accepts(g)) return false;
                }
            }
            if (it == part_of.end()) {
                auto pd = make_pd(g.in_rows, g.pad_top, g.pad_bottom, g.out_rows, winograd_, y_[1]);
                const std::string impl = pd.impl_info_str();
                if (!add_part(pd, g.skip, g.keep)) return false;
                if (impl != impl_ && std::find(chunk_impls_.begin(), chunk_impls_.end(), impl) ==
                                         chunk_impls_.end()) {
                    chunk_impls_.push_back(impl);
                }
                it = part_of.emplace(g.key(), parts_.size() - 1).first;
            }
            chunks_.push_back(Chunk{oh0, oh1, g.ih0, it->second, 0, y_[1], 0, {}, {}, {}});
        }
        return true;
    }

    // Whether oneDNN picks the whole conv's implementation for this chunk geometry (with
    // any_winograd_: any of its Winograd kernels).
    bool accepts(const Geometry& g) const {
        try {
            const std::string impl =
                make_pd(g.in_rows, g.pad_top, g.pad_bottom, g.out_rows, winograd_, y_[1])
                    .impl_info_str();
            return impl == impl_ || (any_winograd_ && impl.find("wino") != std::string::npos);
        } catch (const dnnl::error&) {
            return false;  // no implementation of this algorithm for the chunk
        }
    }

    // The fused activation and residual Add on `pixels` rows of `width` channels, in place in
    // y (rows y_stride elements apart), reading the residual r (rows r_stride apart; null:
    // none).
    void epilogue(float* y, int64_t y_stride, const float* r, int64_t r_stride, int64_t pixels,
                  int64_t width) const {
        if (y_stride == width && (r == nullptr || r_stride == width)) {
            epilogue_run(y, r, pixels * width);
            return;
        }
        for (int64_t p = 0; p < pixels; ++p) {
            epilogue_run(y + p * y_stride, r ? r + p * r_stride : nullptr, width);
        }
    }

    void epilogue_run(float* yf, const float* r, int64_t len) const {
        if (silu_) silu_f32(yf, yf, len);
        if (relu_) {
            for (int64_t i = 0; i < len; ++i) yf[i] = yf[i] > 0.0f ? yf[i] : 0.0f;
        }
        if (hardswish_) hardswish(yf, len);
        if (hardsigmoid_) hardsigmoid(yf, len);
        if (r) {
            if (relu_after_) {
                for (int64_t i = 0; i < len; ++i) {
                    const float v = yf[i] + r[i];
                    yf[i] = v > 0.0f ? v : 0.0f;
                }
            } else {
                for (int64_t i = 0; i < len; ++i) yf[i] += r[i];
            }
        }
    }

    // x * clamp(alpha * x + beta, 0, 1), HardSigmoid's arithmetic (NaN stays NaN).
    void hardswish(float* y, int64_t n) const {
        const float a = hs_alpha_, b = hs_beta_;
        for (int64_t i = 0; i < n; ++i) {
            const float v = y[i];
            float h = a * v + b;
            h = h < 0.0f ? 0.0f : h;
            h = h > 1.0f ? 1.0f : h;
            y[i] = v * h;
        }
    }

    // clamp(alpha * x + beta, 0, 1), the HardSigmoid reference's arithmetic (NaN stays NaN).
    void hardsigmoid(float* y, int64_t n) const {
        const float a = hs_alpha_, b = hs_beta_;
        for (int64_t i = 0; i < n; ++i) {
            float h = a * y[i] + b;
            h = h < 0.0f ? 0.0f : h;
            y[i] = h > 1.0f ? 1.0f : h;
        }
    }

    // The weights `w` (ONNX layout) in every format the parts use (with a folded
    // BatchNormalization: scaled per output channel first).
    std::vector<memory> reorder_weights(const void* w) {
        std::vector<float> scaled;
        if (!bn_.scale.empty()) {
            const int64_t m = y_[1];
            const int64_t per = user_wei_md_.get_size() / sizeof(float) / static_cast<size_t>(m);
            const auto* src = static_cast<const float*>(w);
            scaled.resize(static_cast<size_t>(m * per));
            for (int64_t k = 0; k < m; ++k) {
                for (int64_t i = 0; i < per; ++i) {
                    scaled[static_cast<size_t>(k * per + i)] =
                        src[k * per + i] * bn_.scale[static_cast<size_t>(k)];
                }
            }
            w = scaled.data();
        }
        std::vector<memory> out;
        const int64_t per = static_cast<int64_t>(user_wei_md_.get_size() / sizeof(float)) / y_[1];
        for (const WeightSlice& s : wei_slices_) {
            // Output channels are the outermost weights axis (group 1: oihw).
            memory::dims dims = wei_dims_;
            dims[0] = s.oc1 - s.oc0;
            const memory::desc user = s.oc0 == 0 && s.oc1 == y_[1]
                                          ? user_wei_md_
                                          : memory::desc(dims, DT::f32, Tag::oihw);
            out.push_back(
                dnnl_.reorder_weights(user, static_cast<const float*>(w) + s.oc0 * per, {s.md})[0]);
        }
        return out;
    }

    DnnlState& dnnl_;
    std::string what_, impl_;
    Shape x_, y_;
    int64_t group_ = 1;
    int n_threads_ = 1;
    Window h_, w_;
    bool silu_ = false;
    bool residual_ = false;
    bool has_bias_ = false;
    bool relu_ = false, hardswish_ = false, hardsigmoid_ = false, relu_after_ = false;
    float hs_alpha_ = 0.0f, hs_beta_ = 0.0f;
    BnFold bn_;                       // a folded BatchNormalization (empty: none)
    std::vector<float> folded_bias_;  // with bn_: the bias the primitive reads
    bool winograd_ = false;
    // Row chunks may run any of oneDNN's Winograd kernels (plan_chunks); chunk_impls_: the
    // kernels of chunks other than the whole conv's.
    bool any_winograd_ = false;
    std::vector<std::string> chunk_impls_;
    memory::dims wei_dims_;
    memory::desc user_wei_md_;
    // The weights the chunks use: a format and a range of output channels.
    struct WeightSlice {
        memory::desc md;
        int64_t oc0 = 0, oc1 = 0;
    };
    std::vector<WeightSlice> wei_slices_;
    bool oc_chunks_ = false;  // chunks are ranges of output channels (make_oc_chunks)
    std::vector<Part> parts_;
    std::vector<Chunk> chunks_;
    const void* planned_w_ = nullptr;
    std::vector<memory> weights_;  // the planned weights, one per wei_slices_ entry
    ConvRouting routing_;          // split ranges and concat slices of the result
};

}  // namespace

std::unique_ptr<FastOp> make_conv(DnnlState& dnnl, const Node& node, std::span<const Operand> ins,
                                  const Operand& out, ConvFusion fusion, int n_threads,
                                  std::vector<std::string>& warnings) {
    if (ins.size() < 2 || ins[0].dtype != DType::Float32 || ins[0].shape.size() != 4 ||
        ins[1].dtype != DType::Float32 || ins[1].shape.size() != 4 || ins[1].constant == nullptr ||
        out.dtype != DType::Float32 || out.shape.size() != 4) {
        return nullptr;
    }
    if (ins.size() > 2 && ins[2].present() &&
        (ins[2].dtype != DType::Float32 || ins[2].constant == nullptr)) {
        return nullptr;
    }
    if (fusion.residual &&
        (ins.size() != 4 || ins[3].dtype != DType::Float32 || ins[3].shape != out.shape)) {
        return nullptr;
    }
    if (fusion.relu_after && !fusion.residual) return nullptr;
    const int64_t group = node.attr_int("group", 1);
    if (group < 1 || ins[0].shape[1] % group != 0 || ins[1].shape[0] % group != 0 ||
        ins[1].shape[1] * group != ins[0].shape[1] || shape_numel(out.shape) == 0) {
        return nullptr;
    }
    auto op = std::make_unique<ConvOp>(dnnl);
    try {
        if (!op->init(node, ins, out, fusion, n_threads, warnings).is_ok()) return nullptr;
    } catch (const dnnl::error& e) {
        warnings.push_back(
            fmt::format("{}: oneDNN cannot run this Conv ({}); using lowbit's "
                        "reference Conv",
                        node.describe(), e.what()));
        return nullptr;
    }
    return op;
}

}  // namespace lowbit::cpu
