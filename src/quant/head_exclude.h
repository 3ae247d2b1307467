// The seed's head exclusion list (research/seed-spec.md §8): every node of the given op types
// (Conv by default) whose name starts with the detection head's scope, sorted, one per line.
//
// The scope is `/model.23/` in Ultralytics YOLOv10 exports; here it is found from the graph's
// structure so other exports work too: the "final" Convs are those from which a graph output is
// reached without passing another Conv, and the scope is the first two components of their
// names ("/model.23/") when they all share them. When names carry no such scope, the head is
// the union of the branches ending in the final Convs: a node belongs to a branch when every
// reader of its outputs does, so the walk stops at tensors read by two branches (the neck's
// feature maps).
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "ir/graph.h"

namespace lowbit::quant {

struct HeadExcludeOptions {
    std::string scope;  // non-empty: use this prefix (the seed's --prefix)
    std::vector<std::string> op_types = {"Conv"};
};

struct HeadExcludeResult {
    std::string scope;   // the prefix used; empty for the structural fallback
    std::string method;  // "given", "structure (final convs)", or "structure (head branches)"
    std::vector<std::string> final_convs;
    std::vector<std::string> nodes;  // sorted, unique
};

Result<HeadExcludeResult> head_exclusion_list(const Graph& g, const HeadExcludeOptions& o);

}  // namespace lowbit::quant
