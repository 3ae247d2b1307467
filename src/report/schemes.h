// Top-K exclusion schemes from a sensitivity report: the seed's
// make_yolov10m_candidate_schemes.py (research/seed-spec.md §10), with a mapping from Torch
// module paths to ONNX nodes that keeps the head convs (report/torch_names.h).
//
// Selection for K: walk the report in rank order and take the first K entries that name a node
// of the model: lowbit entries by exact name, Torch entries through the module-path mapping
// (Convs only). Entries passed over on the way are listed, with a warning: Torch layers that no
// Conv of the model belongs to in `missing_layers` (e.g. YOLOv10's one2many head branch, which
// the export drops), lowbit nodes absent from the model in `missing_onnx_nodes`. The seed
// instead counts unmapped rows towards K, so its K lists come out short whenever head layers
// rank high; here a K-candidate keeps K nodes in high precision whenever the model has them.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "report/sensitivity_report.h"

namespace lowbit::report {

struct SchemeOptions {
    std::vector<int> ks = {0, 5, 10, 20};
    std::string onnx_path;  // recorded in scheme_k{K}.json
    std::string mode = "fp8";
    std::string calibration_method;  // as `quantize` will use it
    std::string high_precision = "fp32";
    int top_n_md = 25;
};

struct Scheme {
    int k = 0;
    std::vector<std::string> excluded_layers;      // report names of the selected entries
    std::vector<std::string> excluded_onnx_nodes;  // their ONNX nodes, rank order
    std::vector<std::string> missing_onnx_nodes;   // lowbit names passed over: not in the model
    std::vector<std::string> missing_layers;       // Torch layers passed over: no ONNX Conv
};

// One report entry and what it resolved to.
struct ResolvedEntry {
    SensitivityEntry entry;
    std::optional<std::string> onnx_node;  // set when it names a node of the model
    std::string note;                      // why not, when it does not
};

struct SchemeSet {
    std::vector<ResolvedEntry> entries;
    std::vector<Scheme> schemes;  // ascending, unique K
    std::vector<std::string> warnings;
};

// (name, op_type) of each node of an ONNX graph.
using NodeList = std::vector<std::pair<std::string, std::string>>;

// `model`: the graph the names refer to. Required for Torch reports; for lowbit reports nullptr
// skips the name check (every name is taken as given).
Result<SchemeSet> make_schemes(const SensitivityReport& report, const NodeList* model,
                               const SchemeOptions& o);

// scheme_k{K}.json, the seed's keys in the seed's order.
nlohmann::ordered_json scheme_json(const SensitivityReport& report, const Scheme& s,
                                   const SchemeOptions& o);
// nodes_to_exclude_k{K}.txt: one name a line, trailing newline; K = 0 gives "".
std::string exclusion_list_text(const Scheme& s);
// candidates.md.
std::string candidates_markdown(const SensitivityReport& report, const SchemeSet& set,
                                const SchemeOptions& o);

// Writes every file into `out_dir` (created if needed). All contents are rendered before the
// first write and each file is written atomically. Returns the paths written.
Result<std::vector<std::string>> write_schemes(const std::string& out_dir,
                                               const SensitivityReport& report,
                                               const SchemeSet& set, const SchemeOptions& o);

}  // namespace lowbit::report
