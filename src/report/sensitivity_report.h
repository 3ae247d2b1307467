// Reading per-layer sensitivity reports of either origin into one ranked list:
// - lowbit's own (`lowbit sensitivity --out`): top-level "nodes", a list of {"rank", "node" (ONNX
//   node name), "op_type", "scope", "macs", "macs_share", "score" (higher = more sensitive),
//   "metrics"}, plus "model", "mode", "metric";
// - the seed's Torch `layer-sensitivity-report.json` (research/seed-spec.md §9.4): top-level
//   "layer_sensitivity", a list of {"layer" (Torch module path), "num_bits", "sensitivity",
//   "size_cost"} sorted by sensitivity, descending (null counts as 0).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace lowbit::report {

struct SensitivityEntry {
    int rank = 0;         // 1-based
    std::string name;     // ONNX node name (lowbit) or Torch module path (seed)
    std::string op_type;  // lowbit reports only
    double score = 0;     // higher = more sensitive
    std::optional<double> macs_share;
};

struct SensitivityReport {
    enum class Kind { Lowbit, Torch };
    Kind kind = Kind::Lowbit;
    std::string path;    // the file read
    std::string model;   // lowbit: the ONNX path; Torch: the checkpoint ("model"."id")
    std::string mode;    // lowbit: "fp8" / "int8"; Torch: the weight-activation pair if given
    std::string metric;  // lowbit: the metric; Torch: the AutoQuant method
    std::vector<SensitivityEntry> entries;  // rank order
};

// Errors name the file and the offending key ("report.json: nodes[3].node: expected a string").
Result<SensitivityReport> load_sensitivity_report(const std::string& path);

}  // namespace lowbit::report
