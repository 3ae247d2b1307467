// The Placer: Q/DQ placement's working state and its steps, shared by the files of this folder
// (internal to quant/; the public entry point is place_qdq in quant/placement.h). One file per
// job, run in this order by Placer::run (quant/placement.cpp), with ModelOpt's step letters
// (research/modelopt.md §3.2-§3.6):
//   exclusions.cpp  user and automatic exclusions (§3.2), Step B hard-coded patterns
//   partitions.cpp  Step A residual Adds (fusible backbones), Steps C-D CASK/KGEN partitions
//   select.cpp      Steps E-J: which nodes get Q/DQ and why, or why not
//   edges.cpp       the Q/DQ pairs on tensors and weights, Concat groups, the skip notes
#pragma once

#include <map>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "quant/graph_view.h"
#include "quant/placement.h"

namespace lowbit::quant::placement_detail {

// std::regex reports bad patterns by throwing; compile_regex is the only place that can, and it
// never lets an exception out.
std::optional<std::regex> compile_regex(const std::string& pattern, std::string* error);
bool prefix_match(const std::regex& re, const std::string& name);

// Elements of the fusible-backbone paths of Step A (walked backwards from the Add's producer).
enum class Elem { Conv, BiasAdd, ConstMul, Relu, BatchNorm, MaxPool, Mul, SiluMul, Sigmoid };

constexpr int kNone = -1;

class Placer {
public:
    Placer(const Graph& g, const TypeLookup& types, const PlacementOptions& o)
        : v_(g), types_(types), o_(o), n_(g.nodes.size()) {}

    Result<Placement> run();

private:
    const GraphView v_;
    const TypeLookup& types_;
    const PlacementOptions& o_;
    const size_t n_;
    std::set<std::string> opset_;

    std::vector<std::string> exclude_reason_;  // non-empty: excluded before placement
    std::vector<bool> hard_;                   // Step B non-quantizable patterns
    std::vector<int> part_;                    // partition id per node
    std::vector<int> part_kind_;               // 0 = CASK, 1 = KGEN
    std::vector<size_t> part_head_;
    std::unordered_map<size_t, size_t> residual_main_;  // Add -> index of its main input
    std::unordered_map<size_t, std::string> residual_note_;
    std::vector<std::string> selected_rule_;              // non-empty: selected
    std::set<std::pair<size_t, size_t>> no_quant_edges_;  // (node, input index)
    // Add-head inputs that keep a Q/DQ only if another consumer quantizes the tensor (Step G).
    std::set<std::pair<size_t, size_t>> conditional_edges_;
    std::vector<std::string> skip_reason_;
    std::unordered_map<size_t, int> backbone_cache_;

    Placement out_;

    bool in_set(const std::string& op) const { return opset_.count(op) > 0; }
    std::optional<TensorType> type_of(const std::string& t) const {
        if (const Tensor* init = v_.graph().initializer(t))
            return TensorType{init->dtype(), init->shape()};
        return types_ ? types_(t) : std::nullopt;
    }
    bool is_float_tensor(const std::string& t) const {
        auto tt = type_of(t);
        if (!tt || tt->dtype == DType::Undefined) return true;
        return tt->dtype == DType::Float32 || tt->dtype == DType::Float16 ||
               tt->dtype == DType::BFloat16 || tt->dtype == DType::Float64;
    }

    Status compute_exclusions();
    std::string conv_exclusion(size_t n) const;
    void mha_exclusions();
    std::string gemv_exclusion(size_t n) const;
    void hard_coded_patterns();

    int match_path(size_t n, const std::vector<Elem>& pat, size_t k, int depth) const;
    bool elem_matches(size_t n, Elem e) const;
    int backbone(size_t n);
    std::pair<long, std::pair<int, int>> lowest_common_ancestor(size_t a, size_t b) const;
    void residual_map();

    bool sigmoid_gate(size_t mul) const;
    void grow(size_t seed, int pid);
    void partitions();
    bool follows_cask(size_t n, int depth) const;
    void select();
    void note_excluded_and_hard();
    bool select_op_types();
    void select_cask_heads(std::vector<bool>& partial);
    std::vector<size_t> select_kgen_heads();
    void select_layer_norms();
    void select_leftovers();
    std::string selected_neighbour(size_t n) const;
    void keep_graph_outputs_float(const std::vector<bool>& partial);
    void condition_add_head_edges(const std::vector<size_t>& add_heads);
    void assign_edges();
    void concat_groups();
    void explain_skips();

    void add_edge(std::map<std::string, size_t>& index, const std::string& tensor, size_t node,
                  size_t input, const std::string& rule);
};

}  // namespace lowbit::quant::placement_detail
