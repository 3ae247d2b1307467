// Tensor lifetimes of a program: from the step that first writes a run-time tensor to the last
// step that reads it. What the memory planner (runtime/memory_plan.h) needs to reuse memory.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

namespace lowbit {

struct Step;

// A second name for (part of) another tensor's memory: `offset` bytes into `root`'s bytes
// (memory_plan.h alias_copy_steps, alias_concat_inputs).
struct TensorAlias {
    std::string root;
    size_t offset = 0;
};

struct Lifetime {
    int first = 0;  // first step that writes it (-1: a graph input, written before the run)
    int last = 0;   // last step that reads or writes it (steps.size(): a graph output)
};

// Every tensor the steps write, and the graph inputs. A tensor with several writers (an
// in-place concat buffer, or the root of aliases that steps write) lives from the first. Graph
// outputs live to the end (steps.size()). Sorted by name: the memory plan built from it is
// deterministic. A read or write of an alias counts as one of its root, and an alias that is a
// graph output keeps its root to the end; aliases get no lifetime of their own.
std::map<std::string, Lifetime> tensor_lifetimes(
    const std::vector<Step>& steps, const std::vector<std::string>& graph_inputs,
    const std::vector<std::string>& graph_outputs,
    const std::map<std::string, TensorAlias>& aliases = {});

}  // namespace lowbit
