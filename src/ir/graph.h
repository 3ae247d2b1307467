// The in-memory model: a plain, editable mirror of ONNX ModelProto that the rest of the library
// works on (onnx/ is the only code that sees protobuf). Tensor names are strings; an empty input
// name means "optional input not given", as in ONNX.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"

namespace lowbit {

struct Graph;

// A node attribute. Exactly the fields matching `kind` are meaningful.
struct Attr {
    enum class Kind { Undefined, Float, Int, String, Tensor, Graph, Floats, Ints, Strings, Tensors,
                      Graphs, SparseTensor, TypeProto };
    Kind kind = Kind::Undefined;
    float f = 0;
    int64_t i = 0;
    std::string s;  // bytes; not necessarily UTF-8
    lowbit::Tensor t;
    std::shared_ptr<lowbit::Graph> g;
    std::vector<float> floats;
    std::vector<int64_t> ints;
    std::vector<std::string> strings;
    std::vector<lowbit::Tensor> tensors;
    std::vector<std::shared_ptr<lowbit::Graph>> graphs;
    std::string doc_string;
    // Kinds we carry but do not interpret (sparse tensors, type protos) keep their serialized
    // AttributeProto so a round trip is lossless.
    std::string opaque;

    static Attr make_float(float v);
    static Attr make_int(int64_t v);
    static Attr make_string(std::string v);
    static Attr make_ints(std::vector<int64_t> v);
    static Attr make_floats(std::vector<float> v);
    static Attr make_tensor(lowbit::Tensor v);
};

const char* attr_kind_name(Attr::Kind k);

struct Node {
    std::string name;
    std::string op_type;
    std::string domain;  // "" = default ONNX domain
    std::vector<std::string> inputs;
    std::vector<std::string> outputs;
    std::map<std::string, Attr> attrs;
    std::string doc_string;

    const Attr* attr(const std::string& key) const;
    bool has_attr(const std::string& key) const { return attr(key) != nullptr; }
    // Typed getters with defaults. They do not check the kind beyond returning the default
    // when the attribute is absent; kind mismatches are reported by the kernels' prepare().
    int64_t attr_int(const std::string& key, int64_t def) const;
    float attr_float(const std::string& key, float def) const;
    std::string attr_string(const std::string& key, const std::string& def) const;
    std::vector<int64_t> attr_ints(const std::string& key,
                                   const std::vector<int64_t>& def = {}) const;
    std::vector<float> attr_floats(const std::string& key, const std::vector<float>& def = {}) const;

    // "Conv '/model.0/conv/Conv'": for error messages.
    std::string describe() const;
};

// One dimension of a declared shape: a fixed size, a symbolic name, or unknown.
struct Dim {
    int64_t value = -1;  // >= 0 when fixed
    std::string param;   // symbolic name when not fixed
    bool is_fixed() const { return value >= 0; }
};

struct ValueInfo {
    std::string name;
    DType dtype = DType::Undefined;
    bool has_shape = false;  // false: rank unknown
    std::vector<Dim> dims;
    std::string doc_string;
    // Non-tensor types (sequence, map, optional) are carried opaquely for round trips.
    std::string opaque_type;

    std::string shape_str() const;
    // Rank known and every dimension a fixed size (nothing for a caller to choose).
    bool fixed_shape() const;
};

struct Graph {
    std::string name;
    std::string doc_string;
    std::vector<Node> nodes;
    std::vector<ValueInfo> inputs;
    std::vector<ValueInfo> outputs;
    std::vector<ValueInfo> value_info;
    // Initializers in file order. Names are unique.
    std::vector<std::pair<std::string, Tensor>> initializers;
    // Serialized GraphProto fields we carry but do not interpret (sparse_initializer,
    // quantization_annotation), kept so a round trip is lossless.
    std::string opaque_extra;

    const Tensor* initializer(const std::string& name) const;
    void set_initializer(const std::string& name, Tensor t);  // add or replace
    bool remove_initializer(const std::string& name);
    const ValueInfo* find_input(const std::string& name) const;
    // The inputs a run feeds: graph inputs that are not initializers, in order.
    std::vector<const ValueInfo*> data_inputs() const;
};

struct OpsetId {
    std::string domain;  // "" or "ai.onnx" = default domain
    int64_t version = 0;
};

struct Model {
    int64_t ir_version = 8;
    std::vector<OpsetId> opsets;
    std::string producer_name;
    std::string producer_version;
    std::string domain;
    int64_t model_version = 0;
    std::string doc_string;
    std::vector<std::pair<std::string, std::string>> metadata;
    Graph graph;
    std::string opaque_extra;  // serialized functions / training_info, kept for round trips

    // Opset version of the default ONNX domain (0 if absent).
    int64_t default_opset() const;
    void set_default_opset(int64_t v);
};

// Nodes of `g` in a topological order (indices into g.nodes). Fails on a cycle or on an input
// that no node, initializer or graph input produces (naming the node and the tensor).
Result<std::vector<size_t>> topological_order(const Graph& g);

// Map tensor name -> index of the producing node.
std::unordered_map<std::string, size_t> producer_index(const Graph& g);
// Map tensor name -> indices of the consuming nodes (in node order).
std::unordered_map<std::string, std::vector<size_t>> consumer_index(const Graph& g);

}  // namespace lowbit
