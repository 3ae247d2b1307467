// Float16 conversion of the high-precision part of a (quantized) graph, as ModelOpt's default
// `--high_precision_dtype fp16` does (research/modelopt.md §3.9): every float32 initializer and
// activation becomes float16, graph inputs and outputs keep their declared types through
// boundary Casts (`<input>_cast_to_fp16`, `<output>_cast_to_fp32`), Resize's roi/scales stay
// float32 (the op requires it), and ops that have no float16 form (NonMaxSuppression, Upsample,
// Celu, control flow) or that the caller lists stay float32 with Casts around them.
// Q/DQ scales are expected to be float16 already (the rewrite stores them so).
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "ir/graph.h"
#include "quant/placement.h"

namespace lowbit::quant {

struct Fp16Options {
    std::vector<std::string> keep_fp32_op_types;
};

struct Fp16Stats {
    int initializers = 0;  // float32 initializers converted
    int casts = 0;         // Cast nodes inserted
};

// `types` gives the element type of every tensor of `model` before the conversion.
Result<Fp16Stats> convert_to_fp16(Model& model, const TypeLookup& types, const Fp16Options& o);

// Reorders model.graph.nodes topologically (stable for already sorted graphs).
Status sort_nodes(Graph& g);

}  // namespace lowbit::quant
