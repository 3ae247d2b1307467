// src/report: Torch <-> ONNX names, schemes, Pareto front, tables.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "report/compare.h"
#include "report/html_report.h"
#include "report/schemes.h"
#include "report/svg_plot.h"
#include "report/torch_names.h"

namespace lowbit::report {
namespace {

std::string source_path(const std::string& rel) {
    return std::string(LOWBIT_SOURCE_DIR) + "/" + rel;
}

// "OpType name" lines of tests/models/*.nodes.txt -> (name, op_type).
NodeList read_node_list(const std::string& file) {
    std::ifstream in(source_path("tests/models/" + file));
    NodeList nodes;
    std::string op, name;
    while (in >> op >> name) nodes.emplace_back(name, op);
    return nodes;
}

std::vector<std::string> read_lines(const std::string& file) {
    std::ifstream in(source_path("tests/models/" + file));
    std::vector<std::string> lines;
    std::string line;
    while (std::getline(in, line)) {
        if (!line.empty() && line[0] != '#') lines.push_back(line);
    }
    return lines;
}

TEST(TorchNames, HandWrittenCases) {
    EXPECT_EQ(torch_module_name("/model.0/conv/Conv"), "model.0.conv");
    EXPECT_EQ(torch_module_name("/model.8/m.0/cv1/cv1.0/conv/Conv"), "model.8.m.0.cv1.0.conv");
    EXPECT_EQ(torch_module_name("/model.10/ffn/ffn.1/conv/Conv"), "model.10.ffn.1.conv");
    EXPECT_EQ(torch_module_name("/model.23/cv2.0/cv2.0.0/conv/Conv"), "model.23.cv2.0.0.conv");
    EXPECT_EQ(torch_module_name("/model.23/cv2.0/cv2.0.2/Conv"), "model.23.cv2.0.2");
    EXPECT_EQ(torch_module_name("/model.23/cv3.0/cv3.0.0/cv3.0.0.0/conv/Conv"),
              "model.23.cv3.0.0.0.conv");
    EXPECT_EQ(
        torch_module_name("/model.23/one2one_cv3.2/one2one_cv3.2.1/one2one_cv3.2.1.1/conv/Conv"),
        "model.23.one2one_cv3.2.1.1.conv");
    EXPECT_EQ(torch_module_name("/model.23/dfl/conv/Conv"), "model.23.dfl.conv");
    // Not one module's own op, or no scope at all.
    EXPECT_EQ(torch_module_name("/model.23/Conv_1"), std::nullopt);
    EXPECT_EQ(torch_module_name("Conv_0"), std::nullopt);

    EXPECT_TRUE(torch_name_matches("model.23.cv2.0.0.conv", "/model.23/cv2.0/cv2.0.0/conv/Conv"));
    EXPECT_TRUE(torch_name_matches("model.6.m.0.cv1.0.conv", "/model.6/m.0/cv1/cv1.0/conv/Conv"));
    // The seed's token rule would take these; the scope rule does not.
    EXPECT_FALSE(torch_name_matches("model.23.cv2.0.0.conv",
                                    "/model.23/one2one_cv2.0/one2one_cv2.0.0/conv/Conv"));
    EXPECT_FALSE(torch_name_matches("model.2.m.0.cv1.conv", "/model.2/m.0/cv1/cv1.0/conv/Conv"));
    EXPECT_FALSE(torch_name_matches("model.2.m.0", "/model.2/m.0/cv1/conv/Conv"));
    EXPECT_FALSE(torch_name_matches("model.2.m.0.cv1.conv", "/model.2/cv1/conv/Conv"));
}

// Every Conv of both YOLOv10m node lists: the rebuilt Torch name is unique, belongs to that node
// by the scope rule and to no other Conv, and is a real nn.Conv2d of Ultralytics' YOLOv10m.
TEST(TorchNames, BijectionOverYolov10mConvs) {
    std::vector<std::string> golden = read_lines("yolov10m-torch-conv2d.txt");
    ASSERT_EQ(golden.size(), 142u);
    std::set<std::string> torch_convs(golden.begin(), golden.end());
    for (const char* file : {"yolov10m-full.nodes.txt", "yolov10m-full-raw.nodes.txt"}) {
        SCOPED_TRACE(file);
        NodeList nodes = read_node_list(file);
        std::vector<std::string> convs;
        for (const auto& [name, op] : nodes) {
            if (op == "Conv") convs.push_back(name);
        }
        ASSERT_GE(convs.size(), 117u);
        std::set<std::string> seen;
        size_t head = 0;
        TorchNameIndex index(nodes);
        EXPECT_EQ(index.size(), convs.size());
        for (const std::string& c : convs) {
            std::optional<std::string> t = torch_module_name(c);
            ASSERT_TRUE(t) << c;
            EXPECT_TRUE(torch_convs.count(*t)) << c << " -> " << *t;
            EXPECT_TRUE(seen.insert(*t).second) << "two Convs give " << *t;
            for (const std::string& other : convs) {
                EXPECT_EQ(torch_name_matches(*t, other), other == c) << *t << " vs " << other;
            }
            EXPECT_EQ(index.find(*t), c);
            head += c.rfind("/model.23/", 0) == 0;
        }
        EXPECT_GE(head, 24u);  // 3 levels x (3 box + 5 class) head convs
        // The Torch convs the export lacks are exactly the one2many head branch (and the DFL
        // conv in the raw cut).
        for (const std::string& t : golden) {
            if (seen.count(t)) continue;
            bool one2many = t.rfind("model.23.cv2.", 0) == 0 || t.rfind("model.23.cv3.", 0) == 0;
            bool dfl =
                t == "model.23.dfl.conv" && std::string(file).find("raw") != std::string::npos;
            EXPECT_TRUE(one2many || dfl) << t << " has no ONNX Conv";
            EXPECT_EQ(index.find(t), std::nullopt) << t;
        }
    }
}

// An export that keeps the one2many branch (the seed's §13.2 models): its convs map too.
TEST(TorchNames, One2ManyExportMaps) {
    NodeList nodes = {{"/model.23/cv2.0/cv2.0.0/conv/Conv", "Conv"},
                      {"/model.23/cv2.0/cv2.0.2/Conv", "Conv"},
                      {"/model.23/cv3.0/cv3.0.0/cv3.0.0.0/conv/Conv", "Conv"},
                      {"/model.23/cv3.0/cv3.0.0/cv3.0.0.0/act/Sigmoid", "Sigmoid"}};
    TorchNameIndex index(nodes);
    EXPECT_EQ(index.find("model.23.cv2.0.0.conv"), "/model.23/cv2.0/cv2.0.0/conv/Conv");
    EXPECT_EQ(index.find("model.23.cv2.0.2"), "/model.23/cv2.0/cv2.0.2/Conv");
    EXPECT_EQ(index.find("model.23.cv3.0.0.0.conv"), "/model.23/cv3.0/cv3.0.0/cv3.0.0.0/conv/Conv");
    EXPECT_EQ(index.find("model.23.cv3.0.0.0.act"), std::nullopt);  // not a Conv
    EXPECT_EQ(index.find("model.23.cv2.0"), std::nullopt);
}

SensitivityReport torch_report(std::vector<std::string> layers) {
    SensitivityReport r;
    r.kind = SensitivityReport::Kind::Torch;
    r.path = "layer-sensitivity-report.json";
    for (size_t i = 0; i < layers.size(); ++i) {
        r.entries.push_back({static_cast<int>(i) + 1, layers[i], "", 10.0 - i, std::nullopt});
    }
    return r;
}

TEST(Schemes, TorchReportKeepsHeadConvsAndFillsK) {
    NodeList nodes = read_node_list("yolov10m-full-raw.nodes.txt");
    SensitivityReport r =
        torch_report({"model.23.one2one_cv2.0.0.conv", "model.23.cv2.0.0.conv",
                      "model.23.one2one_cv3.0.2", "model.0.conv", "model.8.m.0.cv1.0.conv"});
    SchemeOptions o;
    o.ks = {3, 0};
    auto set = make_schemes(r, &nodes, o);
    ASSERT_TRUE(set) << set.status().message();
    ASSERT_EQ(set->schemes.size(), 2u);
    EXPECT_EQ(set->schemes[0].k, 0);
    EXPECT_EQ(exclusion_list_text(set->schemes[0]), "");
    const Scheme& s = set->schemes[1];
    EXPECT_EQ(s.excluded_onnx_nodes,
              (std::vector<std::string>{"/model.23/one2one_cv2.0/one2one_cv2.0.0/conv/Conv",
                                        "/model.23/one2one_cv3.0/one2one_cv3.0.2/Conv",
                                        "/model.0/conv/Conv"}));
    EXPECT_EQ(s.excluded_layers,
              (std::vector<std::string>{"model.23.one2one_cv2.0.0.conv", "model.23.one2one_cv3.0.2",
                                        "model.0.conv"}));
    EXPECT_EQ(s.missing_layers, std::vector<std::string>{"model.23.cv2.0.0.conv"});
    EXPECT_EQ(exclusion_list_text(s),
              "/model.23/one2one_cv2.0/one2one_cv2.0.0/conv/Conv\n"
              "/model.23/one2one_cv3.0/one2one_cv3.0.2/Conv\n/model.0/conv/Conv\n");
    ASSERT_EQ(set->warnings.size(), 1u);
    EXPECT_NE(set->warnings[0].find("one2many"), std::string::npos);
    auto j = scheme_json(r, s, o);
    std::vector<std::string> keys;
    for (auto it = j.begin(); it != j.end(); ++it) keys.push_back(it.key());
    EXPECT_EQ(keys, (std::vector<std::string>{"source_report", "onnx_path", "k", "excluded_layers",
                                              "excluded_onnx_nodes", "missing_onnx_nodes",
                                              "missing_layers", "materialization"}));
}

TEST(Schemes, LowbitReportChecksNamesAndNeedsNoModel) {
    SensitivityReport r;
    r.path = "sens.json";
    r.entries = {{1, "/a/Conv", "Conv", 3, 0.5},
                 {2, "/gone/Conv", "Conv", 2, 0.1},
                 {3, "/b/Conv", "Conv", 1, 0.2}};
    SchemeOptions o;
    o.ks = {2};
    NodeList nodes = {{"/a/Conv", "Conv"}, {"/b/Conv", "Conv"}};
    auto set = make_schemes(r, &nodes, o);
    ASSERT_TRUE(set);
    EXPECT_EQ(set->schemes[0].excluded_onnx_nodes,
              (std::vector<std::string>{"/a/Conv", "/b/Conv"}));
    EXPECT_EQ(set->schemes[0].missing_onnx_nodes, std::vector<std::string>{"/gone/Conv"});
    auto unchecked = make_schemes(r, nullptr, o);
    ASSERT_TRUE(unchecked);
    EXPECT_EQ(unchecked->schemes[0].excluded_onnx_nodes,
              (std::vector<std::string>{"/a/Conv", "/gone/Conv"}));
    // Torch reports cannot be resolved without the model.
    EXPECT_FALSE(make_schemes(torch_report({"model.0.conv"}), nullptr, o));
    o.ks = {-1};
    EXPECT_FALSE(make_schemes(r, nullptr, o));
}

TEST(Compare, ParetoFront) {
    // (latency, mAP): 1 and 3 are dominated; 4 ties 0 exactly and loses to the first.
    std::vector<std::pair<double, double>> p = {{10, 0.50}, {12, 0.49}, {8, 0.45}, {15, 0.50},
                                                {10, 0.50}, {20, 0.55}, {5, 0.30}};
    EXPECT_EQ(pareto_front(p), (std::vector<size_t>{6, 2, 0, 5}));
    EXPECT_TRUE(pareto_front({}).empty());
    EXPECT_EQ(pareto_front({{1, 1}}), std::vector<size_t>{0});
}

TEST(Compare, NaturalOrder) {
    std::vector<std::string> names = {"fp8_k20", "fp8_k5", "int8", "fp8_k0", "fp8_k10"};
    std::sort(names.begin(), names.end(), natural_less);
    EXPECT_EQ(names, (std::vector<std::string>{"fp8_k0", "fp8_k5", "fp8_k10", "fp8_k20", "int8"}));
}

Variant variant(const std::string& name, double map, double ms, std::optional<int64_t> q) {
    Variant v;
    v.name = name;
    v.file = "results/" + name + ".json";
    v.onnx_path = "onnx/" + name + ".onnx";
    v.map50_95 = map;
    v.map50 = map + 0.2;
    v.mean_ms = ms;
    v.median_ms = ms;
    v.p90_ms = ms * 1.1;
    v.quantized_nodes = q;
    v.model_bytes = 5'234'567;
    return v;
}

TEST(Compare, MarkdownTableAndRecommendation) {
    std::vector<Variant> vs = {
        variant("fp8_k10", 0.69, 30.0, 180), variant("int8", 0.65, 20.0, 200),
        variant("baseline", 0.70123, 40.0, 0), variant("fp8_k5", 0.6951, 25.0, 190)};
    CompareOptions o;
    auto c = compare_variants(vs, o);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->variants[0].name, "baseline");
    EXPECT_EQ(c->variants[1].name, "fp8_k5");
    std::string md = markdown_table(*c);
    std::istringstream in(md);
    std::string header, rule, base, k5;
    std::getline(in, header);
    std::getline(in, rule);
    std::getline(in, base);
    std::getline(in, k5);
    EXPECT_EQ(
        header,
        "| variant | mAP_50_95 | mAP_50 | drop | mean_ms | p90_ms | size MB | quantized nodes "
        "| onnx |");
    EXPECT_EQ(
        base,
        "| baseline | 0.7012 | 0.9012 | - | 40.000 | 44.000 | 5.23 | 0 | onnx/baseline.onnx |");
    EXPECT_EQ(
        k5,
        "| fp8_k5 | 0.6951 | 0.8951 | 0.0061 | 25.000 | 27.500 | 5.23 | 190 | onnx/fp8_k5.onnx |");
    // int8 is fastest but drops 0.051; fp8_k5 is the fastest within 0.01.
    ASSERT_TRUE(c->recommendation.index);
    EXPECT_EQ(c->variants[*c->recommendation.index].name, "fp8_k5");
    // With a looser tolerance int8 wins; with none within, the most accurate quantized one.
    o.max_drop = 0.06;
    auto loose = compare_variants(vs, o);
    EXPECT_EQ(loose->variants[*loose->recommendation.index].name, "int8");
    o.max_drop = 0.001;
    auto strict = compare_variants(vs, o);
    EXPECT_EQ(strict->variants[*strict->recommendation.index].name, "fp8_k5");
    EXPECT_NE(strict->recommendation.reason.find("no quantized variant is within"),
              std::string::npos);
    std::string summary = summary_markdown(*strict, o);
    EXPECT_NE(summary.find("## Recommendation"), std::string::npos);
    EXPECT_NE(summary.find("## Datasets"), std::string::npos);
    o.baseline = "nonexistent";
    EXPECT_FALSE(compare_variants(vs, o));
}

TEST(Compare, HtmlIsSelfContained) {
    std::vector<Variant> vs = {variant("baseline", 0.7, 40.0, 0), variant("fp8_k0", 0.6, 20.0, 9),
                               variant("a<b>", 0.65, 30.0, 9)};
    auto c = compare_variants(vs, CompareOptions{});
    ASSERT_TRUE(c);
    SensitivityReport r;
    r.path = "sens.json";
    for (int i = 0; i < 40; ++i)
        r.entries.push_back({i + 1, "/n" + std::to_string(i), "Conv", 40.0 - i, {}});
    std::string html = html_report(*c, CompareOptions{}, {r});
    EXPECT_EQ(html.find("http"), std::string::npos);
    EXPECT_EQ(html.find("src="), std::string::npos);
    EXPECT_EQ(html.find("<script"), std::string::npos);
    EXPECT_NE(html.find("<svg"), std::string::npos);
    EXPECT_NE(html.find("a&lt;b&gt;"), std::string::npos);
    EXPECT_EQ(html.find("a<b>"), std::string::npos);
    EXPECT_NE(html.find(">/n29 (Conv)<"), std::string::npos);  // 30 bars
    EXPECT_EQ(html.find(">/n30 (Conv)<"), std::string::npos);
}

TEST(Compare, NiceTicks) {
    std::vector<double> unit = nice_ticks(0.0, 1.0, 5);
    ASSERT_EQ(unit.size(), 6u);
    for (size_t i = 0; i < unit.size(); ++i) EXPECT_NEAR(unit[i], 0.2 * i, 1e-12);
    auto t = nice_ticks(17.3, 42.9, 5);
    ASSERT_FALSE(t.empty());
    EXPECT_DOUBLE_EQ(t.front(), 20);
    EXPECT_DOUBLE_EQ(t.back(), 40);
}

}  // namespace
}  // namespace lowbit::report
