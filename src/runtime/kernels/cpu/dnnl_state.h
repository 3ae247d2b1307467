// oneDNN objects shared by the fast ops of one executor. Only the files of kernels/cpu include
// oneDNN; every call into it is wrapped there (oneDNN 2.6 v2 API: op descriptors + primitive
// descriptors), so a move to oneDNN 3.x stays contained (research/engine-perf.md, pitfalls).
//
// Primitives are created for one thread each (the executor's TaskPool runs them in parallel
// tasks, see runtime/task_pool.h), so each pool thread has its own stream and scratchpad.
#pragma once

#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace lowbit::cpu {

struct DnnlState {
    explicit DnnlState(int n_threads) {
        for (int i = 0; i < n_threads; ++i) streams.emplace_back(engine);
        scratch.resize(static_cast<size_t>(n_threads));
    }

    dnnl::engine engine{dnnl::engine::kind::cpu, 0};
    std::vector<dnnl::stream> streams;  // one per pool thread
    // User-managed scratchpads, one per pool thread, sized at plan time to the largest need.
    std::vector<std::shared_ptr<Buffer>> scratch;

    void reserve_scratch(size_t bytes) {
        if (bytes == 0) return;
        for (auto& s : scratch) {
            if (!s || s->size() < bytes) s = std::make_shared<Buffer>(bytes);
        }
    }
    dnnl::memory scratch_memory(const dnnl::memory::desc& d, int thread) {
        const size_t t = static_cast<size_t>(thread);
        return dnnl::memory(d, engine, d.get_size() ? scratch[t]->data() : nullptr);
    }
};

// oneDNN's implementation name ("brgconv:avx512_core"); "ref" in it means a reference
// implementation that is orders of magnitude slower (research/engine-perf.md).
inline bool is_dnnl_ref_impl(const std::string& impl) {
    return impl.find("ref") != std::string::npos;
}

}  // namespace lowbit::cpu
