// Torch module paths <-> ONNX node names of a torch.onnx export (Ultralytics YOLO).
//
// The seed maps the layers of its Torch sensitivity report to ONNX nodes with a token rule that
// never matches a detection-head conv (research/seed-spec.md §10.2). Here the mapping follows the
// exporter's own naming instead. torch.onnx (1.13, `_setup_trace_module_map`) names a node
// "/" + scope_1 + "/" + ... + scope_m + "/" + OpType[_N], one scope per module whose forward ran,
// outermost first. A module's scope is its qualified name cut to start at the last atom that is
// not a number ("model.23.one2one_cv2.0.0" -> "one2one_cv2.0.0", "model.23" -> "model.23").
// Containers that are only indexed (ModuleList, and the top-level Sequential that YOLO iterates
// by hand) have no scope.
//
// ONNX -> Torch (torch_module_name): rebuild the qualified name scope by scope. A scope that
// extends the previous one by numeric atoms is an element of that Sequential
// ("one2one_cv2.0" then "one2one_cv2.0.0" appends ".0"); any other scope is a child, appended
// whole ("model.8" then "m.0" gives "model.8.m.0").
//
// Torch -> ONNX (torch_name_matches): a node belongs to module T when its scopes are the scopes
// of increasing prefixes of T, the last being T itself, that leave no atom of T uncovered. This
// is a direct check of the naming rule, independent of the rebuild above, so the two can test
// each other.
#pragma once

#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace lowbit::report {

// The Torch module path of the module that emitted `onnx_name`, or nullopt when the name has
// no scope or its op part carries an "_N" suffix (the module emitted several ops of that type,
// so the node is not "the" op of one module).
// "/model.23/one2one_cv3.0/one2one_cv3.0.0/one2one_cv3.0.0.0/conv/Conv"
//   -> "model.23.one2one_cv3.0.0.0.conv"
std::optional<std::string> torch_module_name(const std::string& onnx_name);

// True when `onnx_name` is an op of module `torch_name` by the exporter's scope rule.
bool torch_name_matches(const std::string& torch_name, const std::string& onnx_name);

// Torch module path -> ONNX node, over the nodes of one op type (Conv) of a model.
class TorchNameIndex {
public:
    // `nodes`: (name, op_type) of every node of the model; only `op_type` ones are indexed.
    TorchNameIndex(const std::vector<std::pair<std::string, std::string>>& nodes,
                   const std::string& op_type = "Conv");

    // The ONNX node of `torch_name`, or nullopt when no indexed node belongs to that module
    // or when two do. Rebuilt names are looked up first; the scope rule is then tried on every
    // indexed node, for exports whose scopes the rebuild reads differently.
    std::optional<std::string> find(const std::string& torch_name) const;

    size_t size() const { return by_torch_.size(); }

private:
    std::unordered_map<std::string, std::string> by_torch_;
    std::unordered_map<std::string, int> clashes_;  // torch names rebuilt from several nodes
    std::vector<std::string> names_;                // every indexed node
};

}  // namespace lowbit::report
