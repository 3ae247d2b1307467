// oneDNN objects shared by the fast ops of one executor. Only the files of kernels/cpu include
// oneDNN; every call into it is wrapped there (oneDNN 2.6 v2 API: op descriptors + primitive
// descriptors), so a move to oneDNN 3.x stays contained (research/engine-perf.md, pitfalls).
#pragma once

#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <memory>

#include "core/tensor.h"

namespace lowbit::cpu {

struct DnnlState {
    dnnl::engine engine{dnnl::engine::kind::cpu, 0};
    dnnl::stream stream{engine};
    // One user-managed scratchpad for all primitives: steps run one at a time. Sized at plan
    // time to the largest primitive's need.
    std::shared_ptr<Buffer> scratch;

    void reserve_scratch(size_t bytes) {
        if (bytes == 0 || (scratch && scratch->size() >= bytes)) return;
        scratch = std::make_shared<Buffer>(bytes);
    }
    dnnl::memory scratch_memory(const dnnl::memory::desc& d) {
        return dnnl::memory(d, engine, d.get_size() ? scratch->data() : nullptr);
    }
};

// oneDNN's implementation name ("brgconv:avx512_core"); "ref" in it means a reference
// implementation that is orders of magnitude slower (research/engine-perf.md).
inline bool is_dnnl_ref_impl(const std::string& impl) {
    return impl.find("ref") != std::string::npos;
}

}  // namespace lowbit::cpu
