#include "pipeline/results_file.h"

#include <filesystem>

#include "core/fs.h"
#include "onnx/model_io.h"
#include "report/compare.h"

namespace lowbit::pipeline {

namespace fs = std::filesystem;

nlohmann::ordered_json variant_json(const VariantInfo& v, const Graph& g,
                                    const std::string& model_path) {
    nlohmann::ordered_json j = {{"name", v.name}, {"mode", v.mode}};
    if (v.k) j["k"] = *v.k;
    j["excluded_nodes"] = v.excluded_nodes;
    j["quantized_nodes"] = report::count_quantized_nodes(g);
    if (!v.calibration_method.empty()) j["calibration_method"] = v.calibration_method;
    std::error_code ec;
    const auto bytes = fs::file_size(model_path, ec);
    if (!ec) j["model_bytes"] = bytes;
    if (!v.scheme.empty()) j["scheme"] = v.scheme;
    return j;
}

Status write_results_json(const std::string& path, nlohmann::ordered_json metrics,
                          const nlohmann::ordered_json& variant) {
    metrics["variant"] = variant;
    fs::path parent = fs::path(path).parent_path();
    std::error_code ec;
    if (!parent.empty()) fs::create_directories(parent, ec);
    if (ec) return io_error("cannot create {}: {}", parent.string(), ec.message());
    return write_file_atomic(path, metrics.dump(2) + "\n");
}

Status write_results_from_metrics(const std::string& metrics_path, const std::string& out,
                                  const std::string& model_path, const VariantInfo& variant) {
    LOWBIT_ASSIGN(std::string text, read_file(metrics_path));
    nlohmann::ordered_json metrics = nlohmann::ordered_json::parse(text, nullptr, false);
    if (metrics.is_discarded()) return invalid("{} is not valid JSON", metrics_path);
    LOWBIT_ASSIGN(Model model, load_model(model_path));
    return write_results_json(out, std::move(metrics),
                              variant_json(variant, model.graph, model_path));
}

}  // namespace lowbit::pipeline
