#include "runtime/kernel_report.h"

#include <fmt/format.h>

namespace lowbit {

std::string KernelReport::summary() const {
    std::string s = "kernels:";
    const char* sep = " ";
    for (const auto& [name, n] : kernels) {
        s += fmt::format("{}{} {}", sep, name, n);
        sep = ", ";
    }
    if (qdq_convs == 0 && qdq_moves == 0) return s;
    s += fmt::format("; Q/DQ convs {}: {} int8, ", qdq_convs, int8_convs);
    if (fp8_convs > 0) s += fmt::format("{} fp8, ", fp8_convs);
    s += fmt::format("{} fell back", qdq_convs - int8_convs - fp8_convs);
    if (qdq_moves > 0) {
        s += fmt::format("; Q/DQ concat/pool {}: {} int8, {} fell back", qdq_moves, int8_moves,
                         qdq_moves - int8_moves);
    }
    std::map<std::string, int64_t> why;
    for (const auto& f : fallbacks) ++why[f.reason];
    sep = " (";
    for (const auto& [reason, n] : why) {
        s += fmt::format("{}{}: {}", sep, reason, n);
        sep = "; ";
    }
    if (!why.empty()) s += ")";
    if (dq_skipped > 0) s += fmt::format("; {} DequantizeLinear never executed", dq_skipped);
    return s;
}

}  // namespace lowbit
