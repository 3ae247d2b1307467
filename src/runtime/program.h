// Program: the steps an executor actually runs, built from the planned nodes (runtime/plan.h)
// by runtime/program_builder.h. Owns nothing but the data types: which tensor each step reads
// and writes (by storage name), the storage layout of every run-time tensor, and where each
// tensor lives in the arena (runtime/memory_plan.h). Internal to runtime/.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/tensor.h"
#include "runtime/kernel_report.h"
#include "runtime/kernels/cpu/fast_ops.h"
#include "runtime/layout.h"
#include "runtime/lifetimes.h"
#include "runtime/memory_plan.h"

namespace lowbit {

constexpr size_t kNoNode = static_cast<size_t>(-1);

// How a run-time tensor is stored.
struct Stored {
    DType dtype = DType::Undefined;
    Shape shape;  // logical (ONNX order)
    Layout layout = Layout::Plain;
};

struct Step {
    size_t node = kNoNode;      // graph node index; kNoNode for an inserted reorder
    std::vector<size_t> fused;  // further nodes this step computes (a fused SiLU's Sigmoid, Mul)
    std::vector<std::string> in, out;         // storage tensor names ("" = absent)
    std::vector<Layout> in_layouts;           // layout of each `in` tensor
    std::vector<Tensor> in_views, out_views;  // the tensors of in/out (the arena never moves)
    std::vector<size_t> in_ids, out_ids;      // memory slot of each in/out (kNoNode: none)
    std::vector<Tensor> scratch_in_views, scratch_out_views;  // the same in the scratch arena
    // IncrementalRunner::add_constant_variant(): replaced constant inputs (in the step's
    // layouts; empty: as planned) and the fast op prepared with them (null: `fast` runs with
    // them per call).
    std::vector<Tensor> variant_in;
    std::unique_ptr<cpu::FastOp> variant_fast;
    std::unique_ptr<cpu::FastOp> fast;  // null: the node's reference kernel, or a reorder
    Layout reorder_to = Layout::Plain;
    std::string label;  // profile key
    std::string kernel;  // KernelReport's name of what runs the step
};

struct Program {
    std::vector<Step> steps;
    std::unordered_map<std::string, Stored> stored;     // run-time tensors (graph ones and aliases)
    std::unordered_map<std::string, Tensor> constants;  // plan-time NHWC copies of constants
    std::unordered_map<std::string, size_t> slot_of;
    std::map<std::string, TensorAlias> aliases;  // memory_plan.h alias_copy_steps
    std::vector<MemorySlot> slots;
    size_t arena_bytes = 0;
    std::shared_ptr<Buffer> arena;
    std::shared_ptr<Buffer> scratch;  // run_nodes() outputs (IncrementalRunner), made on first use
    KernelReport report;

    Layout layout_of(const std::string& name) const {
        auto it = stored.find(name);
        return it == stored.end() ? Layout::Plain : it->second.layout;
    }
};

}  // namespace lowbit
