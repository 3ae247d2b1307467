// Mixed-precision search (`lowbit mixed`): each candidate node (a quantized node with a weight)
// takes one of several formats, each with its weight bytes and a sensitivity cost (the node's
// measured sensitivity in that format, alone; float costs 0). Costs are taken as additive.
//
// greedy_path: every node starts at its least-cost format (fewer bytes on ties); then, step by
// step, the one move to a smaller format with the least cost added per byte saved is made (over
// every node and every smaller format), until every node is at its smallest format. Each state
// on the path is (close to) the least total cost for its bytes -- the greedy solution of the
// multiple-choice knapsack along the lower convex hulls -- so the path is the estimated Pareto
// front, and a weight-byte budget picks the first state within it.
//
// The same search runs against latency (MixedResource::Latency): each choice's `ms` is the node's
// measured latency in that format (pipeline/node_latency.h), moves go to a faster format with the
// least cost added per millisecond saved, and a latency budget picks the first state whose summed
// node latencies are within it (the caller adds the time no candidate owns).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "quant/assignment.h"

namespace lowbit::quant {

struct MixedChoice {
    NodeFormat format = NodeFormat::Int8;
    int64_t bytes = 0;  // the node's weight bytes in this format (values, scales, zero points)
    double cost = 0;    // sensitivity (>= 0)
    double ms = 0;      // the node's latency in this format (MixedResource::Latency)
};

enum class MixedResource { Bytes, Latency };

struct MixedNode {
    std::string name;
    int64_t params = 0;  // weight elements
    std::vector<MixedChoice> choices;
};

struct MixedState {
    int64_t bytes = 0;        // candidate nodes' weight bytes
    double cost = 0;          // estimated (summed) cost
    double ms = 0;            // estimated (summed) candidates' latency
    std::vector<int> choice;  // per node: index into its choices
};

// The path's states, from the least-cost state to the fewest-bytes (or fastest) one (the
// resource strictly decreasing). Errors on a node without choices or a negative or non-finite
// cost or latency (naming it).
Result<std::vector<MixedState>> greedy_path(const std::vector<MixedNode>& nodes,
                                            MixedResource resource = MixedResource::Bytes);

// The first state of `path` whose bytes are <= budget; -1 when none is.
int pick_within(const std::vector<MixedState>& path, int64_t budget);
// The first state of `path` whose estimated latency is <= budget_ms; -1 when none is.
int pick_within_ms(const std::vector<MixedState>& path, double budget_ms);

// The assignment of a state (nodes not in `nodes` take `fallback`).
Assignment assignment_of(const std::vector<MixedNode>& nodes, const MixedState& s,
                         NodeFormat fallback = NodeFormat::Int8);

// The share of the candidates' weight elements in `f` in state s.
double params_share(const std::vector<MixedNode>& nodes, const MixedState& s, NodeFormat f);

// Weight bytes of a weight of `numel` elements with `channels` output channels in a format:
// INT4 packed + float32 scales (per channel, or `blocks_per_channel` per channel when blocked),
// INT8 / FP8 one byte + float32 scale and one-byte zero point per channel, float 4 bytes.
int64_t format_weight_bytes(NodeFormat f, int64_t numel, int64_t channels,
                            int64_t blocks_per_channel = 1);

}  // namespace lowbit::quant
