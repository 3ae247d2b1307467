// engine_info(): oneDNN's version and instruction set limit, and the CPU features lowbit's
// kernels were compiled for and the CPU reports.
#include "runtime/engine_info.h"

#include <unistd.h>

#include <oneapi/dnnl/dnnl.hpp>
#include <string_view>

namespace lowbit {

namespace {

// Instruction sets oneDNN 2.x dispatches on, best last, each with the CPU features it needs.
struct IsaLevel {
    dnnl::cpu_isa isa;
    const char* name;
    bool supported;
};

// glibc reads it from CPUID on x86 (what a VM's hypervisor exposes); 0 when unknown.
int64_t os_l2_bytes() {
    const long b = sysconf(_SC_LEVEL2_CACHE_SIZE);
    return b > 0 ? static_cast<int64_t>(b) : 0;
}

}  // namespace

EngineInfo engine_info() {
    EngineInfo info;
    const dnnl::version_t* v = dnnl::version();
    info.onednn_version =
        std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
    if (v->hash && std::string_view(v->hash) != "N/A" && *v->hash) {
        info.onednn_version += std::string(" (git ") + v->hash + ")";
    }

#if defined(__AVX2__)
    info.compiled_features.push_back("AVX2");
#endif
#if defined(__FMA__)
    info.compiled_features.push_back("FMA");
#endif
#if defined(__F16C__)
    info.compiled_features.push_back("F16C");
#endif
#if defined(__AVX512F__)
    info.compiled_features.push_back("AVX-512");
#endif
#if defined(__AVX512VNNI__)
    info.compiled_features.push_back("AVX-512 VNNI");
#endif
#if defined(__AVX512BF16__)
    info.compiled_features.push_back("AVX-512 BF16");
#endif
    if (info.compiled_features.empty()) info.compiled_features.push_back("x86-64 baseline");

    __builtin_cpu_init();
    const bool avx2 = __builtin_cpu_supports("avx2");
    const bool fma = __builtin_cpu_supports("fma");
    const bool f16c = __builtin_cpu_supports("f16c");
    const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
    const bool vnni = __builtin_cpu_supports("avx512vnni");
    const bool bf16 = __builtin_cpu_supports("avx512bf16");
    const std::pair<bool, const char*> features[] = {
        {avx2, "AVX2"},      {fma, "FMA"},           {f16c, "F16C"},
        {avx512, "AVX-512"}, {vnni, "AVX-512 VNNI"}, {bf16, "AVX-512 BF16"}};
    for (const auto& [has, name] : features) {
        if (has) info.cpu_features.push_back(name);
    }

    // oneDNN picks the best level the CPU supports, capped by its limit (DNNL_MAX_CPU_ISA).
    const IsaLevel levels[] = {
        {dnnl::cpu_isa::sse41, "sse41", __builtin_cpu_supports("sse4.1") != 0},
        {dnnl::cpu_isa::avx, "avx", __builtin_cpu_supports("avx") != 0},
        {dnnl::cpu_isa::avx2, "avx2", avx2},
        {dnnl::cpu_isa::avx512_core, "avx512_core", avx512},
        {dnnl::cpu_isa::avx512_core_vnni, "avx512_core_vnni", avx512 && vnni},
        {dnnl::cpu_isa::avx512_core_bf16, "avx512_core_bf16", avx512 && vnni && bf16},
    };
    const auto limit = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
    info.onednn_isa = "baseline";
    for (const IsaLevel& l : levels) {
        const auto bits = static_cast<unsigned>(l.isa);
        const bool within_limit = limit == 0 || (bits & limit) == bits;
        if (l.supported && within_limit) info.onednn_isa = l.name;
    }
    info.l2_bytes = os_l2_bytes();
    return info;
}

int64_t l2_cache_bytes() {
    static const int64_t bytes = [] {
        const int64_t b = os_l2_bytes();
        return b > 0 ? b : int64_t{1} << 20;
    }();
    return bytes;
}

}  // namespace lowbit
