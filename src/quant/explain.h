// `lowbit quantize --explain`: every quantized tensor with the rule that placed it, every
// skipped candidate with the reason, and a per-op-type account (every Conv of the graph is either
// quantized or skipped with a reason).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "quant/placement.h"

namespace lowbit::quant {

// `amax` (optional, one per Placement::activations entry) adds the calibrated ranges.
nlohmann::ordered_json placement_to_json(const Graph& g, const Placement& p,
                                         const std::vector<double>* amax = nullptr);
std::string placement_to_text(const Graph& g, const Placement& p,
                              const std::vector<double>* amax = nullptr);

}  // namespace lowbit::quant
