// Planning: from a Model to prepared run-time nodes. Resolves graph input shapes (the model's
// or ExecutorOptions::input_shapes), prepares every node's reference kernel in topological
// order (which infers output dtypes and shapes and rejects unsupported attributes), and folds
// nodes whose inputs are all known at plan time into constants. Program building
// (runtime/program_builder.h) starts from the result.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "core/thread_pool.h"
#include "ir/graph.h"
#include "runtime/executor.h"
#include "runtime/kernel.h"

namespace lowbit {

struct PlannedModel {
    Graph graph;
    int64_t opset = 0;
    std::vector<TensorDesc> inputs, outputs;
    std::unordered_map<std::string, TensorDesc> descs;  // every tensor known at plan time
    std::unordered_map<std::string, Tensor> constants;  // initializers and folded values
    std::vector<size_t> order;                          // run-time nodes, in execution order
    std::vector<std::unique_ptr<Kernel>> kernels;       // reference kernel per graph node
};

// Fills `out` from `model`; constant folding runs on `pool`. Fails with a message naming the
// node, op and attribute for anything unsupported.
Status plan_model(const Model& model, const std::map<std::string, Shape>& input_shapes,
                  ThreadPool& pool, PlannedModel& out);

}  // namespace lowbit
