// Program building: turns the planned nodes (runtime/plan.h) into a Program (runtime/program.h).
// It only orchestrates, one job per unit:
//   fusion matching        runtime/fusion.h         which nodes one step computes
//   kernel & layout choice runtime/kernel_choice.h  fast op or reference kernel, layouts, reorders
//   aliasing               runtime/memory_plan.h    split folding, in-place concat
//   lifetimes              runtime/lifetimes.h      first writer .. last reader per tensor
//   memory plan            runtime/memory_plan.h    arena offsets
// and then hands every step the tensor views it reads and writes.
#pragma once

#include <memory>
#include <string>

#include "core/status.h"
#include "runtime/kernels/cpu/fast_ops.h"
#include "runtime/plan.h"
#include "runtime/program.h"
#include "core/thread_pool.h"

namespace lowbit {

// The kinds of program (see runtime/executor.cpp): reference (no backend: reference kernels,
// plain layouts), hooked (fast, no fusion), fused (fast with fusion and aliasing). reuse:
// tensors share memory when their lifetimes allow (false: IncrementalRunner keeps them all).
struct ProgramKind {
    bool fast = true;
    bool fuse = true;
    bool reuse = true;
    bool lowp = true;  // fused programs: Q/DQ convs as int8 steps (ExecutorOptions::lowp_kernels)
};

// `backend` may be null only for a non-fast kind.
Result<std::unique_ptr<Program>> build_program(const PlannedModel& pm, cpu::CpuBackend* backend,
                                               const ThreadPool& tasks, ProgramKind kind);

// The profile label of a step: its fast op's description, or "Op [ref]" / "Op [ref nhwc]".
std::string step_label(const Step& s, const Program& p, const Graph& g);

// The tensor `name` as a step sees it: a constant (planned or a plan-time layout copy) or its
// place in p's arena.
Tensor program_view(const Program& p, const PlannedModel& pm, const std::string& name);

}  // namespace lowbit
