// oneDNN objects shared by the fast ops of one executor. Only the files of kernels/cpu include
// oneDNN; every call into it is wrapped there (oneDNN 2.6 v2 API: op descriptors + primitive
// descriptors), so a move to oneDNN 3.x stays contained (research/engine-perf.md, pitfalls).
//
// Primitives are created for one thread each (the executor's ThreadPool runs them in parallel
// tasks, see core/thread_pool.h), so each pool thread has its own stream and workspaces.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <vector>

#include "core/status.h"
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
    PaddedSrc,   // a chunk's input rows, padded, for the direct int8 conv (qconv_direct.h)
    Count,
};

struct DnnlState {
    explicit DnnlState(int n_threads) : work(static_cast<size_t>(std::max(1, n_threads))) {
        for (int i = 0; i < std::max(1, n_threads); ++i) streams.emplace_back(engine);
    }

    dnnl::engine engine{dnnl::engine::kind::cpu, 0};
    bool conv_winograd = true;  // ExecutorOptions::conv_winograd
    bool lowp = true;           // ExecutorOptions::lowp_kernels
    bool int8_direct = true;    // ExecutorOptions::int8_direct
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

// A primitive's arguments on the stack, executed through oneDNN's C API. The C++ execute() takes
// a std::unordered_map (a heap allocation per argument on every call). oneDNN 2.6 still builds
// its own argument map inside dnnl_primitive_execute (a few allocations per call that only a
// newer oneDNN could remove). execute() throws dnnl::error as the C++ execute() does.
class ExecArgs {
public:
    ExecArgs& add(int arg, const dnnl::memory& m) {
        // A seventh argument is a programming error (no call site passes more than five).
        LOWBIT_CHECK(static_cast<size_t>(n_) < args_.size(), "ExecArgs: more than {} arguments",
                     args_.size());
        args_[static_cast<size_t>(n_++)] = {arg, m.get()};
        return *this;
    }
    void execute(const dnnl::primitive& p, dnnl::stream& stream) const {
        dnnl::error::wrap_c_api(dnnl_primitive_execute(p.get(), stream.get(), n_, args_.data()),
                                "could not execute a primitive");
    }

private:
    std::array<dnnl_exec_arg_t, 6> args_{};  // src, weights, bias, dst, scratchpad + one spare
    int n_ = 0;
};

// Executes `p` with the four arguments of a conv or a matmul without bias.
inline void execute_conv(const dnnl::primitive& p, dnnl::stream& stream, const dnnl::memory& src,
                         const dnnl::memory& weights, const dnnl::memory& dst,
                         const dnnl::memory& scratchpad) {
    ExecArgs()
        .add(DNNL_ARG_SRC, src)
        .add(DNNL_ARG_WEIGHTS, weights)
        .add(DNNL_ARG_DST, dst)
        .add(DNNL_ARG_SCRATCHPAD, scratchpad)
        .execute(p, stream);
}

// The oneDNN error of an op's pool tasks (they run on several threads; a later one replaces an
// earlier one's text). After pool.run: `if (failure) return failure.status(what);`.
class TaskFailure {
public:
    void record(const dnnl::error& e) {
        std::lock_guard<std::mutex> lock(mu_);
        what_ = e.what();
        failed_ = true;
    }
    explicit operator bool() const { return failed_; }
    // "<op>: oneDNN failed: <what>" as an internal error.
    Status status(const std::string& op) const {
        return error(StatusCode::Internal, "{}: oneDNN failed: {}", op, what_);
    }

private:
    std::atomic<bool> failed_{false};
    std::mutex mu_;
    std::string what_;
};

// oneDNN's implementation name ("brgconv:avx512_core"); "ref" in it means a reference
// implementation that is orders of magnitude slower (research/engine-perf.md).
inline bool is_dnnl_ref_impl(const std::string& impl) {
    return impl.find("ref") != std::string::npos;
}

}  // namespace lowbit::cpu
