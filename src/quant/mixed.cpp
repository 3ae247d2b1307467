#include "quant/mixed.h"

#include <cmath>
#include <limits>

namespace lowbit::quant {

namespace {

double amount(const MixedChoice& c, MixedResource r) {
    return r == MixedResource::Bytes ? static_cast<double>(c.bytes) : c.ms;
}

}  // namespace

Result<std::vector<MixedState>> greedy_path(const std::vector<MixedNode>& nodes,
                                            MixedResource resource) {
    MixedState s;
    for (const MixedNode& n : nodes) {
        if (n.choices.empty()) return invalid("mixed: node '{}' has no format to choose", n.name);
        int best = 0;
        for (size_t c = 0; c < n.choices.size(); ++c) {
            const MixedChoice& ch = n.choices[c];
            if (!std::isfinite(ch.cost) || ch.cost < 0) {
                return invalid(
                    "mixed: node '{}': the {} sensitivity {} is not a finite number >= 0", n.name,
                    node_format_name(ch.format), ch.cost);
            }
            if (!std::isfinite(ch.ms) || ch.ms < 0) {
                return invalid("mixed: node '{}': the {} latency {} ms is not a finite number >= 0",
                               n.name, node_format_name(ch.format), ch.ms);
            }
            const MixedChoice& b = n.choices[static_cast<size_t>(best)];
            if (ch.cost < b.cost ||
                (ch.cost == b.cost && amount(ch, resource) < amount(b, resource))) {
                best = static_cast<int>(c);
            }
        }
        s.choice.push_back(best);
        s.bytes += n.choices[static_cast<size_t>(best)].bytes;
        s.cost += n.choices[static_cast<size_t>(best)].cost;
        s.ms += n.choices[static_cast<size_t>(best)].ms;
    }
    std::vector<MixedState> path{s};
    for (;;) {
        double best_ratio = std::numeric_limits<double>::infinity();
        size_t bn = 0;
        int bc = -1;
        for (size_t i = 0; i < nodes.size(); ++i) {
            const MixedChoice& cur = nodes[i].choices[static_cast<size_t>(s.choice[i])];
            for (size_t c = 0; c < nodes[i].choices.size(); ++c) {
                const MixedChoice& ch = nodes[i].choices[c];
                const double saved = amount(cur, resource) - amount(ch, resource);
                if (!(saved > 0)) continue;
                const double ratio = (ch.cost - cur.cost) / saved;
                if (ratio < best_ratio) {  // ties: the first node in order (deterministic)
                    best_ratio = ratio;
                    bn = i;
                    bc = static_cast<int>(c);
                }
            }
        }
        if (bc < 0) break;
        const MixedChoice& cur = nodes[bn].choices[static_cast<size_t>(s.choice[bn])];
        const MixedChoice& nx = nodes[bn].choices[static_cast<size_t>(bc)];
        s.bytes += nx.bytes - cur.bytes;
        s.cost += nx.cost - cur.cost;
        s.ms += nx.ms - cur.ms;
        s.choice[bn] = bc;
        path.push_back(s);
    }
    return path;
}

int pick_within(const std::vector<MixedState>& path, int64_t budget) {
    for (size_t i = 0; i < path.size(); ++i) {
        if (path[i].bytes <= budget) return static_cast<int>(i);
    }
    return -1;
}

int pick_within_ms(const std::vector<MixedState>& path, double budget_ms) {
    for (size_t i = 0; i < path.size(); ++i) {
        if (path[i].ms <= budget_ms) return static_cast<int>(i);
    }
    return -1;
}

Assignment assignment_of(const std::vector<MixedNode>& nodes, const MixedState& s,
                         NodeFormat fallback) {
    Assignment a;
    a.fallback = fallback;
    for (size_t i = 0; i < nodes.size(); ++i) {
        a.nodes[nodes[i].name] = nodes[i].choices[static_cast<size_t>(s.choice[i])].format;
    }
    return a;
}

double params_share(const std::vector<MixedNode>& nodes, const MixedState& s, NodeFormat f) {
    double in = 0, all = 0;
    for (size_t i = 0; i < nodes.size(); ++i) {
        all += static_cast<double>(nodes[i].params);
        if (nodes[i].choices[static_cast<size_t>(s.choice[i])].format == f) {
            in += static_cast<double>(nodes[i].params);
        }
    }
    return all > 0 ? in / all : 0;
}

int64_t format_weight_bytes(NodeFormat f, int64_t numel, int64_t channels,
                            int64_t blocks_per_channel) {
    switch (f) {
        case NodeFormat::Int4w: return (numel + 1) / 2 + 4 * channels * blocks_per_channel;
        case NodeFormat::Int8:
        case NodeFormat::Fp8: return numel + 5 * channels;
        case NodeFormat::Float: return 4 * numel;
    }
    return 0;
}

}  // namespace lowbit::quant
