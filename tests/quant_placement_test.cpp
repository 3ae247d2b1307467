// Q/DQ placement: ModelOpt's TensorRT-friendly rules, lowbit's SiLU residual rule, automatic and
// user exclusions, Concat groups, --explain accounting on the YOLOv10m fixture.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <random>
#include <set>

#include "onnx/model_io.h"
#include "quant/head_exclude.h"
#include "quant/quantize_model.h"
#include "quant/placement.h"

namespace lowbit::quant {
namespace {

// Small graph builder: float32 NCHW activations, random Conv weights.
struct Builder {
    Model m;
    std::mt19937 rng{7};

    explicit Builder(Shape in) {
        m.ir_version = 8;
        m.opsets = {{"", 13}};
        ValueInfo x{"x", DType::Float32, true, {}, "", ""};
        for (int64_t d : in) x.dims.push_back({d, ""});
        m.graph.inputs = {x};
    }
    std::string node(const std::string& name, const std::string& op, std::vector<std::string> in,
                     std::map<std::string, Attr> attrs = {}, int n_out = 1) {
        Node n;
        n.name = name;
        n.op_type = op;
        n.inputs = std::move(in);
        for (int i = 0; i < n_out; ++i) n.outputs.push_back(name + "_out" + std::to_string(i));
        n.attrs = std::move(attrs);
        m.graph.nodes.push_back(n);
        return n.outputs[0];
    }
    std::string conv(const std::string& name, const std::string& in, int64_t cin, int64_t cout,
                     int64_t k, int64_t group = 1) {
        std::normal_distribution<float> nd(0.0f, 0.2f);
        Tensor w(DType::Float32, {cout, cin / group, k, k});
        for (auto& v : w.span<float>()) v = nd(rng);
        Tensor b(DType::Float32, {cout});
        for (auto& v : b.span<float>()) v = nd(rng);
        m.graph.set_initializer(name + ".W", w);
        m.graph.set_initializer(name + ".B", b);
        const int64_t p = k / 2;
        return node(name, "Conv", {in, name + ".W", name + ".B"},
                    {{"kernel_shape", Attr::make_ints({k, k})},
                     {"pads", Attr::make_ints({p, p, p, p})},
                     {"group", Attr::make_int(group)}});
    }
    // Conv -> Sigmoid -> Mul, the BN-folded YOLO block.
    std::string conv_silu(const std::string& name, const std::string& in, int64_t cin, int64_t cout,
                          int64_t k, int64_t group = 1) {
        std::string c = conv(name + "/conv", in, cin, cout, k, group);
        std::string s = node(name + "/sig", "Sigmoid", {c});
        return node(name + "/mul", "Mul", {c, s});
    }
    void output(const std::string& t) {
        m.graph.outputs.push_back({t, DType::Float32, false, {}, "", ""});
    }
};

const ActivationQdq* find_act(const Placement& p, const std::string& tensor) {
    for (const auto& a : p.activations) {
        if (a.tensor == tensor) return &a;
    }
    return nullptr;
}

bool has_edge(const Placement& p, const Graph& g, const std::string& tensor,
              const std::string& node, size_t input) {
    const ActivationQdq* a = find_act(p, tensor);
    if (!a) return false;
    for (const auto& [n, k] : a->edges) {
        if (g.nodes[n].name == node && k == input) return true;
    }
    return false;
}

bool selected(const Placement& p, const Graph& g, const std::string& node) {
    for (const auto& [i, r] : p.selected) {
        if (g.nodes[i].name == node) return true;
    }
    return false;
}

std::string skip_reason(const Placement& p, const std::string& node) {
    for (const auto& s : p.skipped) {
        if (s.node == node) return s.reason;
    }
    return "";
}

Placement place(const Model& m, PlacementOptions o) {
    auto r = place_qdq(m.graph, nullptr, o);
    EXPECT_TRUE(r.is_ok()) << r.status().message();
    return r.is_ok() ? r.value() : Placement{};
}

// x -> c0 -> [c1 -> c2] + skip -> c3: a YOLO bottleneck with a residual Add.
Builder bottleneck() {
    Builder b({1, 16, 8, 8});
    std::string x0 = b.conv_silu("c0", "x", 16, 16, 3);
    std::string y1 = b.conv_silu("c1", x0, 16, 16, 3);
    std::string y2 = b.conv_silu("c2", y1, 16, 16, 3);
    std::string s = b.node("add", "Add", {x0, y2});
    b.output(b.conv("c3", s, 16, 16, 1));
    return b;
}

TEST(QuantPlacement, SiluResidualAddQuantizesOnlyTheSkipInput) {
    Builder b = bottleneck();
    Placement p = place(b.m, {});
    const Graph& g = b.m.graph;
    EXPECT_TRUE(selected(p, g, "add"));
    EXPECT_TRUE(has_edge(p, g, "c0/mul_out0", "add", 0));   // skip input
    EXPECT_FALSE(has_edge(p, g, "c2/mul_out0", "add", 1));  // main input stays in the epilogue
    EXPECT_EQ(find_act(p, "c2/mul_out0"), nullptr);
    // Every Conv heads a partition: activation input and per-channel weight quantized.
    for (const char* c : {"c0/conv", "c1/conv", "c2/conv", "c3"}) {
        EXPECT_TRUE(selected(p, g, c)) << c;
    }
    EXPECT_EQ(p.weights.size(), 4u);
    for (const auto& w : p.weights) EXPECT_EQ(w.axis, 0);
    // Sigmoid and Mul are fused: never quantized.
    EXPECT_NE(skip_reason(p, "c1/mul").find("fused"), std::string::npos);
}

TEST(QuantPlacement, ModelOptParityQuantizesBothResidualInputs) {
    Builder b = bottleneck();
    PlacementOptions o;
    o.modelopt_parity = true;
    Placement p = place(b.m, o);
    const Graph& g = b.m.graph;
    EXPECT_TRUE(selected(p, g, "add"));
    EXPECT_TRUE(has_edge(p, g, "c0/mul_out0", "add", 0));
    EXPECT_TRUE(has_edge(p, g, "c2/mul_out0", "add", 1));
}

TEST(QuantPlacement, SppfConcatGroupSharesOneScaleAndMaxPoolsFollowNeighbours) {
    Builder b({1, 16, 8, 8});
    std::string x0 = b.conv_silu("cv1", "x", 16, 16, 1);
    std::map<std::string, Attr> pool = {{"kernel_shape", Attr::make_ints({5, 5})},
                                        {"pads", Attr::make_ints({2, 2, 2, 2})}};
    std::string m1 = b.node("mp1", "MaxPool", {x0}, pool);
    std::string m2 = b.node("mp2", "MaxPool", {m1}, pool);
    std::string m3 = b.node("mp3", "MaxPool", {m2}, pool);
    std::string c = b.node("cat", "Concat", {x0, m1, m2, m3}, {{"axis", Attr::make_int(1)}});
    b.output(b.conv_silu("cv2", c, 64, 16, 1));
    const Graph& g = b.m.graph;

    Placement p = place(b.m, {});
    for (const char* mp : {"mp1", "mp2", "mp3"}) EXPECT_TRUE(selected(p, g, mp)) << mp;
    ASSERT_EQ(p.groups.size(), 1u);
    std::set<std::string> members;
    for (size_t a : p.groups[0]) members.insert(p.activations[a].tensor);
    // The Concat output and each Concat input that is itself quantized (ModelOpt's SPPF result).
    EXPECT_EQ(members, (std::set<std::string>{x0, m1, m2, c}));

    PlacementOptions f;
    f.mode = QuantMode::Fp8;
    Placement p8 = place(b.m, f);
    for (const char* mp : {"mp1", "mp2", "mp3"}) {
        EXPECT_FALSE(selected(p8, g, mp));
        EXPECT_NE(skip_reason(p8, mp).find("FP8"), std::string::npos) << skip_reason(p8, mp);
    }
}

TEST(QuantPlacement, ResizeDataInputQuantizedInInt8Only) {
    Builder b({1, 16, 8, 8});
    std::string x0 = b.conv_silu("c0", "x", 16, 16, 3);
    b.m.graph.set_initializer("scales",
                              Tensor::from_vector<float>(DType::Float32, {4}, {1, 1, 2, 2}));
    std::string r =
        b.node("up", "Resize", {x0, "", "scales"}, {{"mode", Attr::make_string("nearest")}});
    b.output(b.conv("c1", r, 16, 16, 3));
    const Graph& g = b.m.graph;
    Placement p = place(b.m, {});
    EXPECT_TRUE(selected(p, g, "up"));
    EXPECT_TRUE(has_edge(p, g, x0, "up", 0));
    EXPECT_EQ(find_act(p, "scales"), nullptr);
    PlacementOptions f;
    f.mode = QuantMode::Fp8;
    EXPECT_FALSE(selected(place(b.m, f), g, "up"));
}

TEST(QuantPlacement, AutomaticConvExclusionsFollowModelOptRules) {
    Builder b({1, 32, 8, 8});
    std::string a = b.conv_silu("dw3", "x", 32, 32, 3, 32);  // depthwise 3x3, OC % 8 == 0
    std::string d1 = b.conv_silu("dw1", a, 32, 32, 1, 32);   // depthwise 1x1
    std::string s12a = b.conv_silu("c12a", d1, 32, 12, 3);   // OC 12 but IC 32: kept
    std::string s12 = b.conv_silu("c12", s12a, 12, 12, 3);   // OC 12, IC 12: excluded
    std::string s16 = b.conv_silu("c16", s12, 12, 16, 3);    // IC 12, OC 16
    std::string big = b.conv_silu("c32", s16, 16, 32, 3);    // 16 -> 32
    std::string k7 = b.conv_silu("k7", big, 32, 32, 7);      // 7x7
    b.output(b.conv_silu("c48", k7, 32, 48, 3));
    const Graph& g = b.m.graph;

    Placement p = place(b.m, {});
    EXPECT_TRUE(selected(p, g, "dw3/conv"));
    EXPECT_FALSE(selected(p, g, "dw1/conv"));
    EXPECT_TRUE(selected(p, g, "c12a/conv"));
    EXPECT_FALSE(selected(p, g, "c12/conv"));
    EXPECT_TRUE(selected(p, g, "c16/conv"));  // OC % 8 == 0 and OC >= 16
    EXPECT_TRUE(selected(p, g, "k7/conv"));
    EXPECT_NE(skip_reason(p, "dw1/conv").find("INT8 small-channel"), std::string::npos);

    PlacementOptions f;
    f.mode = QuantMode::Fp8;
    Placement p8 = place(b.m, f);
    for (const char* c :
         {"dw3/conv", "dw1/conv", "c12a/conv", "c12/conv", "c16/conv", "c32/conv"}) {
        EXPECT_FALSE(selected(p8, g, c)) << c;  // <= 16 channels (c32's input has 16)
    }
    EXPECT_FALSE(selected(p8, g, "k7/conv"));
    EXPECT_NE(skip_reason(p8, "k7/conv").find("large-kernel"), std::string::npos);
    EXPECT_TRUE(selected(p8, g, "c48/conv"));
}

// --placement all: every 2-D Conv ModelOpt's rules leave in float (small-channel, depthwise 1x1,
// FP8's <= 16-channel and large-kernel ones) gets Q/DQ and a per-channel weight; the default
// keeps ModelOpt's rule.
TEST(QuantPlacement, PlacementAllQuantizesSmallChannelAndLargeKernelConvs) {
    Builder b({1, 32, 8, 8});
    std::string a = b.conv_silu("dw1", "x", 32, 32, 1, 32);  // depthwise 1x1
    std::string s12 = b.conv_silu("c12", a, 32, 12, 3);      // OC 12
    std::string s8 = b.conv_silu("c8", s12, 12, 8, 3);       // OC 8, IC 12: a YOLO /model.2/m.*
    std::string k7 = b.conv_silu("k7", s8, 8, 32, 7);        // 7x7, IC 8
    b.output(b.conv_silu("c48", k7, 32, 48, 3));
    const Graph& g = b.m.graph;
    const std::vector<std::string> convs = {"dw1/conv", "c12/conv", "c8/conv", "k7/conv",
                                            "c48/conv"};
    for (QuantMode mode : {QuantMode::Int8, QuantMode::Fp8}) {
        PlacementOptions o;
        o.mode = mode;
        Placement ref = place(b.m, o);
        EXPECT_FALSE(selected(ref, g, "dw1/conv"));
        EXPECT_FALSE(selected(ref, g, "c8/conv"));
        o.conv_placement = ConvPlacement::All;
        Placement p = place(b.m, o);
        for (const std::string& c : convs) {
            EXPECT_TRUE(selected(p, g, c)) << c << " mode " << static_cast<int>(mode);
            size_t n = 0;
            while (n < g.nodes.size() && g.nodes[n].name != c) ++n;
            EXPECT_TRUE(std::any_of(p.weights.begin(), p.weights.end(), [&](const WeightQdq& w) {
                return w.node == n && w.input == 1 && w.axis == 0;
            })) << c;
            EXPECT_TRUE(has_edge(p, g, g.nodes[n].inputs[0], c, 0)) << c;
        }
        for (const auto& e : p.excluded) EXPECT_NE(e.op_type, "Conv") << e.node << ": " << e.reason;
    }
    EXPECT_TRUE(parse_conv_placement("modelopt").is_ok());
    EXPECT_EQ(parse_conv_placement("all").value(), ConvPlacement::All);
    auto bad = parse_conv_placement("everything");
    ASSERT_FALSE(bad.is_ok());
    EXPECT_NE(bad.status().message().find("--placement 'everything'"), std::string::npos);
}

TEST(QuantPlacement, GraphOutputProducersAreLeftAlone) {
    Builder b({1, 16, 8, 8});
    std::string x0 = b.conv_silu("c0", "x", 16, 16, 3);
    std::string y0 = b.conv_silu("c1", x0, 16, 16, 3);
    std::string y1 = b.conv_silu("c2", x0, 16, 16, 3);
    // Not a residual Add (both sides from one fork, neither a fused main branch of the other):
    // a pointwise head that would be quantized, but it produces the graph output.
    std::string s = b.node("sum", "Add", {y0, y1});
    b.output(s);
    PlacementOptions o;
    o.modelopt_parity = true;
    Placement p = place(b.m, o);
    EXPECT_FALSE(selected(p, b.m.graph, "sum"));
    EXPECT_NE(skip_reason(p, "sum").find("graph output"), std::string::npos);
}

TEST(QuantPlacement, ExclusionNamesAreExactAndRegexesAnchoredAtTheStart) {
    Builder b({1, 16, 8, 8});
    std::string t = "x";
    for (const char* n : {"conv1", "conv10", "conv2", "xconv1"}) t = b.conv(n, t, 16, 16, 3);
    b.output(b.conv("last", t, 16, 16, 3));
    const Graph& g = b.m.graph;
    auto excluded = [&](PlacementOptions o) {
        std::set<std::string> out;
        for (const auto& s : place(b.m, o).excluded) out.insert(s.node);
        return out;
    };
    PlacementOptions names;
    names.exclude_names = {"conv1"};
    EXPECT_EQ(excluded(names), (std::set<std::string>{"conv1"}));
    PlacementOptions prefix;
    prefix.exclude_regex = {"conv1"};  // re.match: also conv10, not xconv1
    EXPECT_EQ(excluded(prefix), (std::set<std::string>{"conv1", "conv10"}));
    PlacementOptions inner;
    inner.exclude_regex = {"onv1"};  // anchored at the start: matches nothing
    EXPECT_TRUE(excluded(inner).empty());
    PlacementOptions full;
    full.exclude_regex = {"conv1$", "x.*"};
    EXPECT_EQ(excluded(full), (std::set<std::string>{"conv1", "xconv1"}));
    // Excluded Convs get no Q/DQ at all, and their inputs are not quantized for them.
    Placement p = place(b.m, names);
    EXPECT_FALSE(selected(p, g, "conv1"));
    EXPECT_FALSE(has_edge(p, g, "x", "conv1", 0));
    EXPECT_TRUE(has_edge(p, g, "conv1_out0", "conv10", 0));
    EXPECT_FALSE(validate_regexes({"("}).is_ok());
}

TEST(QuantPlacement, RegexPrefixMatchIsPythonReMatch) {
    EXPECT_TRUE(regex_prefix_match("/model.2", "/model.23/cv2/Conv"));
    EXPECT_FALSE(regex_prefix_match("/model\\.2/", "/model.23/cv2/Conv"));
    EXPECT_TRUE(regex_prefix_match("/model\\.2/", "/model.2/cv2/Conv"));
    EXPECT_FALSE(regex_prefix_match("cv2", "/model.23/cv2/Conv"));
}

std::string fixture(const std::string& name) {
    return std::string(LOWBIT_SOURCE_DIR) + "/tests/models/" + name;
}

TEST(QuantPlacement, ExplainAccountsForEveryConvOfYolov10m) {
    auto model = load_model(fixture("yolov10m-w0p1875-raw.onnx"));
    ASSERT_TRUE(model.is_ok()) << model.status().message();
    auto prepared = prepare_float_model(*model);
    ASSERT_TRUE(prepared.is_ok());
    for (QuantMode mode : {QuantMode::Int8, QuantMode::Fp8}) {
        QuantizeOptions o;
        o.placement.mode = mode;
        auto p = plan_placement(*prepared, o);
        ASSERT_TRUE(p.is_ok()) << p.status().message();
        std::multiset<std::string> accounted;
        std::set<std::string> all;
        for (const auto& n : prepared->graph.nodes) {
            if (n.op_type == "Conv") all.insert(n.name);
        }
        ASSERT_EQ(all.size(), 117u);
        for (const auto& [i, r] : p->selected) {
            if (prepared->graph.nodes[i].op_type == "Conv")
                accounted.insert(prepared->graph.nodes[i].name);
        }
        for (const auto& s : p->skipped) {
            if (s.op_type == "Conv") {
                accounted.insert(s.node);
                EXPECT_FALSE(s.reason.empty());
            }
        }
        EXPECT_EQ(accounted.size(), 117u);  // each Conv exactly once
        EXPECT_EQ(std::set<std::string>(accounted.begin(), accounted.end()), all);
        // Every quantized Conv has a per-channel weight.
        size_t conv_weights = 0;
        for (const auto& w : p->weights) {
            conv_weights += prepared->graph.nodes[w.node].op_type == "Conv" && w.axis == 0;
        }
        size_t quantized_convs = 0;
        for (const auto& [i, r] : p->selected)
            quantized_convs += prepared->graph.nodes[i].op_type == "Conv";
        EXPECT_EQ(conv_weights, quantized_convs);
    }
}

TEST(QuantPlacement, HeadExclusionFileKeepsExactlyTheHeadConvs) {
    auto model = load_model(fixture("yolov10m-w0p1875-raw.onnx"));
    ASSERT_TRUE(model.is_ok());
    auto head = head_exclusion_list(model->graph, {});
    ASSERT_TRUE(head.is_ok());
    EXPECT_EQ(head->scope, "/model.23/");
    EXPECT_EQ(head->nodes.size(), 24u);  // 3 levels x (3 box + 5 class) Convs
    EXPECT_TRUE(std::is_sorted(head->nodes.begin(), head->nodes.end()));

    // Without scoped names the head is found from the branches feeding the output: the same 24.
    Model anon = *model;
    std::map<std::string, std::string> original;
    for (size_t i = 0; i < anon.graph.nodes.size(); ++i) {
        std::string name = "node_" + std::to_string(i);
        original[name] = anon.graph.nodes[i].name;
        anon.graph.nodes[i].name = name;
    }
    auto by_structure = head_exclusion_list(anon.graph, {});
    ASSERT_TRUE(by_structure.is_ok());
    EXPECT_EQ(by_structure->method, "structure (head branches)");
    std::set<std::string> mapped;
    for (const auto& n : by_structure->nodes) mapped.insert(original[n]);
    EXPECT_EQ(mapped, std::set<std::string>(head->nodes.begin(), head->nodes.end()));

    auto prepared = prepare_float_model(*model);
    QuantizeOptions o;
    o.placement.exclude_names = head->nodes;
    auto p = plan_placement(*prepared, o);
    ASSERT_TRUE(p.is_ok());
    std::set<std::string> excluded;
    for (const auto& e : p->excluded) {
        if (e.reason.find("exclusion file") != std::string::npos) excluded.insert(e.node);
    }
    EXPECT_EQ(excluded, std::set<std::string>(head->nodes.begin(), head->nodes.end()));
    for (const auto& [i, r] : p->selected) {
        EXPECT_NE(prepared->graph.nodes[i].name.rfind("/model.23/", 0), 0u)
            << prepared->graph.nodes[i].name;
    }
}

TEST(QuantPlacement, HeadExclusionFindsTheHeadByStructure) {
    // Unscoped names: backbone -> neck feature used twice; two head branches feed the output.
    Builder b({1, 16, 8, 8});
    std::string f = b.conv_silu("stem", "x", 16, 16, 3);
    std::string n1 = b.conv_silu("neck", f, 16, 16, 3);
    std::string down = b.conv_silu("down", n1, 16, 16, 3);
    std::string h1 = b.conv("box", b.conv_silu("box_pre", n1, 16, 16, 3), 16, 4, 1);
    std::string h2 = b.conv("cls", down, 16, 3, 1);
    std::string out = b.node("cat", "Concat", {h1, h2}, {{"axis", Attr::make_int(1)}});
    b.output(out);
    auto r = head_exclusion_list(b.m.graph, {});
    ASSERT_TRUE(r.is_ok());
    EXPECT_EQ(r->method, "structure (head branches)");
    EXPECT_EQ(r->final_convs, (std::vector<std::string>{"box", "cls"}));
    // The neck feature n1 is read by both branches: the walk stops there.
    EXPECT_EQ(r->nodes, (std::vector<std::string>{"box", "box_pre/conv", "cls", "down/conv"}));
    HeadExcludeOptions given;
    given.scope = "box";
    auto g = head_exclusion_list(b.m.graph, given);
    EXPECT_EQ(g->nodes, (std::vector<std::string>{"box", "box_pre/conv"}));
}

TEST(QuantPlacement, YoloResidualAddsGetSkipOnlyUnlessParity) {
    auto model = load_model(fixture("yolov10m-w0p1875-raw.onnx"));
    ASSERT_TRUE(model.is_ok());
    auto prepared = prepare_float_model(*model);
    const Graph& g = prepared->graph;
    auto add_inputs_quantized = [&](bool parity) {
        QuantizeOptions o;
        o.placement.modelopt_parity = parity;
        auto p = plan_placement(*prepared, o);
        EXPECT_TRUE(p.is_ok());
        std::map<std::string, int> per_add;  // bottleneck Add -> quantized inputs
        for (const auto& a : p->activations) {
            for (const auto& [n, k] : a.edges) {
                const Node& node = g.nodes[n];
                if (node.op_type == "Add" && node.name.find("/m.") != std::string::npos) {
                    ++per_add[node.name];
                }
            }
        }
        return per_add;
    };
    auto lowbit = add_inputs_quantized(false);
    auto parity = add_inputs_quantized(true);
    EXPECT_EQ(lowbit.at("/model.4/m.0/Add"), 1);
    EXPECT_EQ(parity.at("/model.4/m.0/Add"), 2);
}

}  // namespace
}  // namespace lowbit::quant
