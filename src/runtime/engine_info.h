// What the engine runs on, for `lowbit --version`: the oneDNN library it is linked with and the
// CPU features lowbit's own kernels were compiled for, the CPU has, and oneDNN may use.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lowbit {

struct EngineInfo {
    std::string onednn_version;                  // "2.6.3" (+ " (git HASH)" when known)
    std::vector<std::string> compiled_features;  // instruction sets lowbit's code was built for
    std::vector<std::string> cpu_features;       // the subset of {AVX2, FMA, F16C, AVX-512, ...}
                                                 // this CPU has
    std::string onednn_isa;                      // the best instruction set oneDNN uses on this CPU
    int64_t l2_bytes = 0;                        // per-core L2 cache as the OS reports it (0: not)
};

EngineInfo engine_info();

// The per-core L2 cache in bytes as the OS reports it, 1 MiB when it does not (kernels size
// their blocks by it).
int64_t l2_cache_bytes();

}  // namespace lowbit
