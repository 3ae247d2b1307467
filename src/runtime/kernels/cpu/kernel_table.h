// The CPU backend's kernel and layout choice as data: an ordered table of entries, each a
// predicate over the node and its operands, a factory for the fast op and the storage layouts
// the op reads and writes. CpuBackend::choose() walks the table in order; the first entry whose
// predicate holds and whose factory makes an op (or that has no factory: "the reference kernel,
// in these layouts") decides the plan. Nothing matching: the reference kernel on plain tensors.
//
// Adding a fast kernel is one row in kernel_table.cpp (plus a case in tests/ops/lowbit_ops.cpp,
// which fails when an entry has none). Rows that share an op type are tried in table order, so
// a specialised row goes before the general one it refines.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/kernels/cpu/fast_ops.h"

namespace lowbit::cpu {

// What an entry sees of the node being planned (CpuBackend::choose's arguments).
struct FastChoice {
    CpuBackend& backend;
    const Node& node;
    int64_t opset;
    std::span<const Operand> ins;
    std::span<const Operand> outs;
    ConvFusion fusion;
    std::vector<std::string>& warnings;

    bool nhwc_in(size_t i) const { return i < ins.size() && ins[i].layout == Layout::Nhwc; }
};

struct FastEntry {
    std::string_view name;  // short and unique: "conv", "binary", ... (FastPlan::entry)
    std::string_view runs;  // one line for listings: what runs, in which layouts
    bool (*applies)(const FastChoice& c);
    // The fast op; nullptr from it: the entry does not take the node (the next one is tried).
    // A null factory: no fast op, the reference kernel runs in the entry's layouts.
    std::unique_ptr<FastOp> (*make)(const FastChoice& c);
    // Sets the plan's in/out layouts (they start Plain) once the entry has taken the node.
    void (*layouts)(const FastChoice& c, FastPlan& p);
    // The row takes float16 operands of a float32-only op itself (CpuBackend::choose tries such
    // rows before widening the operands to float32).
    bool takes_float16 = false;
};

// The table, in the order CpuBackend::choose() walks it.
std::span<const FastEntry> fast_kernel_table();

}  // namespace lowbit::cpu
