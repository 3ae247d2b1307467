// Results files: an eval metrics.json plus a top-level "variant" object that says which model
// variant was evaluated (`candidates` and the evaluation steps of `run` write them; `compare`
// reads them).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "core/status.h"
#include "ir/graph.h"

namespace lowbit::pipeline {

struct VariantInfo {
    std::string name;  // "baseline", "int8", "fp8_k5", ...
    std::string mode;  // "fp32", "int8", "fp8"
    std::optional<int> k;
    int64_t excluded_nodes = 0;      // names in the exclusion list used
    std::string calibration_method;  // empty for the float model
    std::string scheme;              // exclusion list path; empty when none
};

// {"name", "mode", "k", "excluded_nodes", "quantized_nodes", "calibration_method",
// "model_bytes", "scheme"}; quantized_nodes counted on `g` (report::count_quantized_nodes),
// model_bytes = size of the file. Fields that do not apply (k, calibration_method and scheme of
// the float model) are left out.
nlohmann::ordered_json variant_json(const VariantInfo& v, const Graph& g,
                                    const std::string& model_path);

// Writes `metrics` (eval_metrics_json) with "variant" added, atomically (parent folders made).
Status write_results_json(const std::string& path, nlohmann::ordered_json metrics,
                          const nlohmann::ordered_json& variant);

// The results file of a model already evaluated into `metrics_path` (a metrics.json): that file
// plus the variant of the model at `model_path`, written to `out`.
Status write_results_from_metrics(const std::string& metrics_path, const std::string& out,
                                  const std::string& model_path, const VariantInfo& variant);

}  // namespace lowbit::pipeline
