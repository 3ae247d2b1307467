// oneDNN objects shared by the fast ops of one executor. Only the files of kernels/cpu include
// oneDNN; every call into it is wrapped there (oneDNN 2.6 v2 API: op descriptors + primitive
// descriptors), so a move to oneDNN 3.x stays contained (research/engine-perf.md, pitfalls).
//
// Primitives are created for one thread each (the executor's ThreadPool runs them in parallel
// tasks, see core/thread_pool.h), so each pool thread has its own stream and workspaces.
#pragma once

#include <algorithm>
#include <array>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace lowbit::cpu {

// Per-thread work buffers. Steps run one at a time and a task uses its thread's buffers only
// while it runs, so all ops of an executor share them; each is sized at plan time to the
// largest need. Ops must fetch data() at run time: a later plan may have reallocated it.
enum class Workspace {
    Scratchpad,  // oneDNN user scratchpad
    BlockedSrc,  // a chunk's input reordered for Winograd
    BlockedDst,  // a chunk's Winograd output before the reorder back
    ChunkOut,    // a chunk's conv result when the op writes it only into other tensors
    Count,
};

struct DnnlState {
    explicit DnnlState(int n_threads) : work(static_cast<size_t>(std::max(1, n_threads))) {
        for (int i = 0; i < std::max(1, n_threads); ++i) streams.emplace_back(engine);
    }

    dnnl::engine engine{dnnl::engine::kind::cpu, 0};
    bool conv_winograd = true;  // ExecutorOptions::conv_winograd
    bool lowp = true;           // ExecutorOptions::lowp_kernels
    std::vector<dnnl::stream> streams;  // one per pool thread

    void reserve(Workspace w, size_t bytes) {
        if (bytes == 0) return;
        for (auto& per_thread : work) {
            auto& b = per_thread[static_cast<size_t>(w)];
            if (!b || b->size() < bytes) b = std::make_shared<Buffer>(bytes);
        }
    }
    void* data(Workspace w, int thread) const {
        const auto& b = work[static_cast<size_t>(thread)][static_cast<size_t>(w)];
        return b ? b->data() : nullptr;
    }
    // Weights `w`, laid out as `user`, reordered once into each of `formats` (the distinct
    // weight formats of an op's primitives); done at plan time.
    std::vector<dnnl::memory> reorder_weights(const dnnl::memory::desc& user, const void* w,
                                              const std::vector<dnnl::memory::desc>& formats) {
        dnnl::memory src(user, engine, const_cast<void*>(w));
        std::vector<dnnl::memory> out;
        for (const auto& md : formats) {
            dnnl::memory dst(md, engine);
            dnnl::reorder(src, dst).execute(streams[0], src, dst);
            out.push_back(dst);
        }
        streams[0].wait();
        return out;
    }

private:
    std::vector<std::array<std::shared_ptr<Buffer>, static_cast<size_t>(Workspace::Count)>> work;
};

// Executes `p` with a conv's four arguments through oneDNN's C API. The C++ execute() takes a
// std::unordered_map (a heap allocation per argument on every call); this array is on the stack.
// oneDNN 2.6 still builds its own argument map inside dnnl_primitive_execute (a few allocations
// per call that only a newer oneDNN could remove). Throws dnnl::error as execute() does.
inline void execute_conv(const dnnl::primitive& p, dnnl::stream& stream, const dnnl::memory& src,
                         const dnnl::memory& weights, const dnnl::memory& dst,
                         const dnnl::memory& scratchpad) {
    const dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, src.get()},
                                    {DNNL_ARG_WEIGHTS, weights.get()},
                                    {DNNL_ARG_DST, dst.get()},
                                    {DNNL_ARG_SCRATCHPAD, scratchpad.get()}};
    dnnl::error::wrap_c_api(dnnl_primitive_execute(p.get(), stream.get(), 4, args),
                            "could not execute a primitive");
}

// oneDNN's implementation name ("brgconv:avx512_core"); "ref" in it means a reference
// implementation that is orders of magnitude slower (research/engine-perf.md).
inline bool is_dnnl_ref_impl(const std::string& impl) {
    return impl.find("ref") != std::string::npos;
}

}  // namespace lowbit::cpu
