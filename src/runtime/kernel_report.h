// Which kernel ran each step of an executor's main program, and which Q/DQ nodes fell back to
// the float simulation, and why (Executor::kernel_report(); shown by LOWBIT_PROFILE's summary,
// `lowbit info --json` and `eval`'s metrics.json).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace lowbit {

struct KernelFallback {
    std::string node;    // the Conv's (or Concat's / MaxPool's) node name
    std::string reason;  // why it runs as the float simulation
};

struct KernelReport {
    // Steps per kernel: a kernel-table row's name ("qconv_int8", "conv", ...), "reference" (the
    // node's reference kernel) or "reorder" (a layout change).
    std::map<std::string, int64_t> kernels;
    int64_t qdq_convs = 0;   // Convs reading a DequantizeLinear output
    int64_t int8_convs = 0;  // of which run as int8 steps (W4A8 included: int8 activations)
    int64_t fp8_convs = 0;   // of which run as FP8 (E4M3) steps on bf16 kernels
    int64_t qdq_moves = 0;   // Concat / MaxPool -> QuantizeLinear reading DequantizeLinear codes
    int64_t int8_moves = 0;  // of which run as int8 steps (the others are in `fallbacks` too)
    int64_t dq_skipped = 0;  // DequantizeLinear nodes never executed (no float reader left)
    std::vector<KernelFallback> fallbacks;

    // "kernels: qconv_int8 40, conv 2, ...; Q/DQ convs 42: 40 int8, 2 fell back" (", N fp8" when any) (reason: N, ...)"
    std::string summary() const;
};

}  // namespace lowbit
