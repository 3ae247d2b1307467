// Kernel and layout choice for program building: how each step runs (a fast op from
// CpuBackend::choose(), or the node's reference kernel) and in which layout each tensor it
// reads must be stored, with the reorders (or plan-time constant copies) that brings about.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "ir/graph.h"
#include "runtime/executor.h"
#include "runtime/fusion.h"
#include "runtime/kernels/cpu/fast_ops.h"
#include "runtime/program.h"
#include "core/thread_pool.h"

namespace lowbit {

// What the planner knows about tensors: shapes/dtypes and constant values.
struct TensorFacts {
    const std::unordered_map<std::string, TensorDesc>& descs;
    const std::unordered_map<std::string, Tensor>& constants;
};

// The backend's view of tensors `names` ("" = absent): constants with their value, run-time
// tensors with the layout `p` stores them in.
std::vector<cpu::Operand> operands_of(const std::vector<std::string>& names, const TensorFacts& t,
                                      const Program& p);

// How the step anchored at `node` runs. With a fusion `match` the backend is asked for the
// fused step first; `*fused` tells whether it took it (the step then reads match.inputs and
// writes match.outputs), else the node alone is planned.
cpu::FastPlan choose_step_kernel(cpu::CpuBackend& backend, const Node& node, int64_t opset,
                                 const FusionMatch& match, const TensorFacts& t, const Program& p,
                                 bool* fused, std::vector<std::string>& warnings);

// A plan for the reference kernel on plain tensors.
cpu::FastPlan plain_plan(size_t n_inputs, size_t n_outputs);

// Storage names of tensors in the layouts steps want: the tensor itself when stored so, else a
// copy in that layout made once and shared by every later reader: a reorder step appended to
// the program for run-time tensors, a plan-time copy for constants.
class StorageLayouts {
public:
    StorageLayouts(Program& p, const std::unordered_map<std::string, Tensor>& constants,
                   const ThreadPool& tasks)
        : p_(p), constants_(constants), tasks_(tasks) {}

    std::string storage(const std::string& name, Layout want);

private:
    Program& p_;
    const std::unordered_map<std::string, Tensor>& constants_;
    const ThreadPool& tasks_;
    std::unordered_map<std::string, std::string> aliases_;  // "name\x1f<layout>" -> alias
};

}  // namespace lowbit
