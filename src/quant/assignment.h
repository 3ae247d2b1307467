// Per-node format assignment (`quantize --assign FILE`, `lowbit mixed`): each node that an INT8
// placement quantizes gets one of
//   int4w  INT4 weights (as --mode w4a8: per channel or --block-size, RTN or GPTQ) with the
//          node's activations in INT8;
//   int8   INT8 activations and weights (as --mode int8);
//   fp8    FP8 E4M3FN activations and weights (as --mode fp8; a tensor read by an fp8 node and
//          by an int8 node gets one Q/DQ pair per format);
//   float  the node is excluded (high precision).
// Unlisted nodes take `fallback` (int8 unless the file says otherwise). Quantized weights are
// stored quantized (DequantizeLinear only), so the file's weight bytes are the format's.
//
// File format (JSON): {"default": "int8", "nodes": {"<node name>": "int4w", ...}}; a plain
// {"<node name>": "<format>"} object is read as "nodes" with default int8.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/status.h"
#include "ir/graph.h"
#include "quant/placement.h"

namespace lowbit::quant {

enum class NodeFormat { Int4w, Int8, Fp8, Float };

Result<NodeFormat> parse_node_format(const std::string& s);
const char* node_format_name(NodeFormat f);

struct Assignment {
    std::map<std::string, NodeFormat> nodes;
    NodeFormat fallback = NodeFormat::Int8;
    NodeFormat of(const std::string& node) const {
        auto it = nodes.find(node);
        return it == nodes.end() ? fallback : it->second;
    }
};

// `where` names the source in messages (a file path).
Result<Assignment> assignment_from_json(const nlohmann::json& j, const std::string& where);
nlohmann::ordered_json assignment_to_json(const Assignment& a);

// Every listed name is a node of `g` (else an error with close matches); the fallback is not
// int4w-only (it applies to weightless nodes too, which take int8 then).
Status check_assignment_names(const Graph& g, const Assignment& a, const std::string& where);

// After placement (float nodes excluded): every listed non-float node was selected by the
// placement (else an error naming it and why it was not), and every int4w node has a weight.
Status check_assignment_placement(const Graph& g, const Placement& pl, const Assignment& a,
                                  const std::string& where);

// Bytes of the initializers of `m` as stored (INT4 two values a byte): the model's weight bytes.
int64_t initializer_bytes(const Model& m);

}  // namespace lowbit::quant
