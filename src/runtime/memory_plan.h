// Memory planning: where every run-time tensor of a program lives in its arena.
//  - plan_memory(): the planner proper. Assigns each request an offset in one arena so that
//    tensors whose lifetimes overlap never share bytes, and dead tensors' memory is reused.
//  - Aliasing before planning (fast fused programs only): split folding (a producer writes the
//    parts of a channel Split itself) and in-place channel concatenation (producers write
//    straight into their slice of the Concat's buffer), so those tensors need no memory and
//    those copies no time; and copy steps whose outputs are (runs of) their inputs' bytes
//    (Reshape, contiguous Split / Slice, Concat of runs) become aliases (Program::aliases).
//  - plan_program_memory(): requests from the lifetimes (runtime/lifetimes.h), then the arena.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

namespace lowbit {

struct Graph;
class Kernel;
struct Program;
struct Lifetime;

struct MemoryRequest {
    size_t bytes;
    int first_step;  // step that writes it (-1: before the first step, e.g. graph inputs)
    int last_step;   // last step that reads it (inclusive)
};

struct MemorySlot {
    size_t offset;
};

// Greedy by size (largest first), each placed at the lowest 64-byte aligned offset that does
// not overlap a placed tensor with an intersecting lifetime. Returns one slot per request and
// the arena size in *total_bytes.
std::vector<MemorySlot> plan_memory(const std::vector<MemoryRequest>& reqs, size_t* total_bytes);

// Split folding: a channel Split (NHWC) of a tensor that nothing else reads is done by the fast
// op that produces the tensor, which writes each part as a channel range; the Split step
// disappears.
void fold_splits(Program& p, const Graph& g, const std::unordered_set<std::string>& graph_outputs);

// In-place channel concatenation: a fast op that produces an input of an NHWC channel Concat
// writes it straight into its slice of the concat buffer (the buffer is then an extra output of
// that step, so the buffer has several writers), and keeps its own tensor only when something
// else reads it. The Concat step copies nothing for those inputs.
void plan_in_place_concat(Program& p, const Graph& g,
                          const std::unordered_set<std::string>& graph_outputs);

// For each int8 Concat -> QuantizeLinear step (qmove.cpp) with a float input produced by a step
// that can quantize it itself (the int8 Q/DQ conv writing float32): that producer writes the
// input's codes into the step's output, with the scale the step would quantize it at (the same
// quantize_s8 arithmetic, so the result is bit-identical), and the step skips the part. Without
// other readers the float tensor is no longer written at all.
void plan_quantized_concat_slices(Program& p, const Graph& g,
                                  const std::unordered_set<std::string>& graph_outputs);

// Copy steps as aliases: a step run by its reference kernel whose kernel says each output is
// one contiguous run of input 0's elements (Kernel::output_runs_of_input: Reshape, Flatten,
// Squeeze, Unsqueeze, Identity; a Split with every dim before its axis 1, as the YOLO heads'
// [1, 64 + classes, anchors]; a Slice such as RT-DETR's [1, 8400, 256] -> [1, 300, 256]), with
// input and outputs stored plain, only renames bytes. Each output becomes a second name for its
// run of the input's memory, in p.aliases (chains resolved to the first tensor, offsets added
// up), and the step goes. `kernels`: the reference kernel of each graph node. Fused programs
// only: the hooked program keeps every tensor (and every node's step) for observers.
void alias_copy_steps(Program& p, const std::vector<std::unique_ptr<Kernel>>& kernels);

// Plain Concats whose inputs are consecutive runs of the output's bytes (every dim before the
// axis 1: YOLO heads' [1, C, anchors] joins, the raw heads' box + class output): when every
// input is the whole of a tensor that only earlier steps write (not a graph input, each once),
// each input (with its aliases) becomes an alias of its run of the output, so its producer writes
// it in place, and the Concat step goes. After alias_copy_steps. Fused programs only.
void alias_concat_inputs(Program& p, const Graph& g,
                         const std::unordered_set<std::string>& graph_inputs);

// Gives every tensor in `lifetimes` a slot of p's arena and allocates the arena. With reuse
// false (IncrementalRunner) every tensor lives through the whole run (steps -1 .. `end`), so
// nothing is overwritten.
// Each alias in p.aliases gets its root's slot (program_view adds the alias's offset).
void plan_program_memory(Program& p, const std::map<std::string, Lifetime>& lifetimes, bool reuse,
                         int end);

}  // namespace lowbit
