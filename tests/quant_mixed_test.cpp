// Mixed precision: the greedy search over formats (quant/mixed.h), the weight-byte model, the
// assignment file (quant/assignment.h), and sensitivity's INT4 fake quantization
// (quant/sensitivity/fake_quant.h) against an independent dequantization.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "quant/assignment.h"
#include "quant/mixed.h"
#include "quant/sensitivity/fake_quant.h"

namespace lowbit::quant {
namespace {

MixedNode node(const std::string& name, int64_t params, double c4, double c8, bool with_float) {
    MixedNode n;
    n.name = name;
    n.params = params;
    n.choices.push_back({NodeFormat::Int4w, params / 2, c4});
    n.choices.push_back({NodeFormat::Int8, params, c8});
    if (with_float) n.choices.push_back({NodeFormat::Float, 4 * params, 0.0});
    return n;
}

TEST(MixedSearch, PathStartsAtLeastCostAndEndsAtFewestBytes) {
    std::vector<MixedNode> nodes = {node("a", 100, 5.0, 0.1, false),
                                    node("b", 100, 0.5, 0.1, false),
                                    node("c", 1000, 2.0, 0.2, false)};
    auto path = greedy_path(nodes);
    ASSERT_TRUE(path.is_ok()) << path.status().message();
    ASSERT_EQ(path->size(), 4u);  // three moves int8 -> int4w
    EXPECT_EQ(path->front().bytes, 1200);
    EXPECT_NEAR(path->front().cost, 0.4, 1e-12);
    EXPECT_EQ(path->back().bytes, 600);
    // Cost added per byte saved: c 1.8/500, b 0.4/50, a 4.9/50 -> c, then b, then a.
    EXPECT_EQ((*path)[1].choice, (std::vector<int>{1, 1, 0}));
    EXPECT_EQ((*path)[2].choice, (std::vector<int>{1, 0, 0}));
    for (size_t i = 1; i < path->size(); ++i) {
        EXPECT_LT((*path)[i].bytes, (*path)[i - 1].bytes);
        EXPECT_GE((*path)[i].cost, (*path)[i - 1].cost);
    }
    EXPECT_EQ(pick_within(*path, 1200), 0);
    EXPECT_EQ(pick_within(*path, 700), 1);
    EXPECT_EQ(pick_within(*path, 650), 2);
    EXPECT_EQ(pick_within(*path, 599), -1);
    const Assignment a = assignment_of(nodes, (*path)[2]);
    EXPECT_EQ(a.of("a"), NodeFormat::Int8);
    EXPECT_EQ(a.of("c"), NodeFormat::Int4w);
    EXPECT_EQ(a.of("unlisted"), NodeFormat::Int8);
    EXPECT_NEAR(params_share(nodes, (*path)[2], NodeFormat::Int4w), 1100.0 / 1200.0, 1e-12);
}

// Latency as the resource: each choice's ms is injected (as pipeline/node_latency.h measures it).
MixedChoice timed(NodeFormat f, int64_t bytes, double cost, double ms) {
    MixedChoice c;
    c.format = f;
    c.bytes = bytes;
    c.cost = cost;
    c.ms = ms;
    return c;
}

TEST(MixedSearch, LatencyPathFollowsCostPerMillisecond) {
    // a: int8 saves 3 ms over float for 0.3 (0.1/ms); int4w is no faster than int8 (never taken
    // on the latency path, though it has fewer bytes). b: int8 saves 1 ms for 0.5 (0.5/ms).
    // c: fp8 is slower than float on this machine (never a move).
    MixedNode a{"a",
                100,
                {timed(NodeFormat::Float, 400, 0, 5.0), timed(NodeFormat::Int8, 100, 0.3, 2.0),
                 timed(NodeFormat::Int4w, 50, 1.0, 2.0)}};
    MixedNode b{
        "b", 100, {timed(NodeFormat::Float, 400, 0, 2.0), timed(NodeFormat::Int8, 100, 0.5, 1.0)}};
    MixedNode c{
        "c", 10, {timed(NodeFormat::Float, 40, 0, 1.0), timed(NodeFormat::Fp8, 10, 0.01, 1.5)}};
    const std::vector<MixedNode> nodes = {a, b, c};
    auto path = greedy_path(nodes, MixedResource::Latency);
    ASSERT_TRUE(path.is_ok()) << path.status().message();
    ASSERT_EQ(path->size(), 3u);
    EXPECT_NEAR((*path)[0].ms, 8.0, 1e-12);
    EXPECT_EQ((*path)[1].choice, (std::vector<int>{1, 0, 0}));
    EXPECT_NEAR((*path)[1].ms, 5.0, 1e-12);
    EXPECT_NEAR((*path)[1].cost, 0.3, 1e-12);
    EXPECT_EQ((*path)[2].choice, (std::vector<int>{1, 1, 0}));
    EXPECT_NEAR((*path)[2].ms, 4.0, 1e-12);
    EXPECT_EQ((*path)[2].bytes, 100 + 100 + 40);
    EXPECT_EQ(pick_within_ms(*path, 9.0), 0);
    EXPECT_EQ(pick_within_ms(*path, 4.5), 2);
    EXPECT_EQ(pick_within_ms(*path, 3.9), -1);
    // The bytes path over the same nodes differs: a goes on to int4w, c to fp8.
    auto by_bytes = greedy_path(nodes);
    ASSERT_TRUE(by_bytes.is_ok());
    EXPECT_EQ(by_bytes->back().choice, (std::vector<int>{2, 1, 1}));
}

// A tighter latency budget never picks a state with a larger estimate (whatever the per-node
// times: here some formats are slower than float, as fp8 on this machine).
TEST(MixedSearch, LatencyBudgetsAreMonotone) {
    std::vector<MixedNode> nodes;
    uint32_t r = 12345;
    const auto next = [&r] {
        r = r * 1664525u + 1013904223u;
        return static_cast<double>(r >> 8) / static_cast<double>(1u << 24);
    };
    for (int i = 0; i < 40; ++i) {
        const double f = 0.1 + next();
        nodes.push_back({"n" + std::to_string(i),
                         100,
                         {timed(NodeFormat::Float, 400, 0, f),
                          timed(NodeFormat::Int8, 100, next(), f * (0.3 + next())),
                          timed(NodeFormat::Fp8, 100, next(), f * (0.5 + next()))}});
    }
    auto path = greedy_path(nodes, MixedResource::Latency);
    ASSERT_TRUE(path.is_ok()) << path.status().message();
    ASSERT_GT(path->size(), 20u);
    double prev = std::numeric_limits<double>::infinity();
    int picked = 0;
    for (double budget = path->front().ms + 1; budget > 0; budget -= 0.05) {
        const int k = pick_within_ms(*path, budget);
        if (k < 0) {
            EXPECT_LT(budget, path->back().ms);
            continue;
        }
        ++picked;
        const double ms = (*path)[static_cast<size_t>(k)].ms;
        EXPECT_LE(ms, budget);
        EXPECT_LE(ms, prev) << "budget " << budget;
        prev = ms;
    }
    EXPECT_GT(picked, 10);
}

TEST(MixedSearch, RefusesABadLatency) {
    MixedNode a{"conv7", 100, {timed(NodeFormat::Int8, 100, 0.1, -1.0)}};
    auto path = greedy_path({a}, MixedResource::Latency);
    ASSERT_FALSE(path.is_ok());
    EXPECT_NE(path.status().message().find("conv7"), std::string::npos);
    EXPECT_NE(path.status().message().find("latency"), std::string::npos);
}

TEST(MixedSearch, FloatFirstThenSkipsDominatedSteps) {
    // Float costs 0: the path starts all float, then a node may jump float -> int4w directly
    // when that is cheaper per byte than float -> int8.
    std::vector<MixedNode> nodes = {node("a", 100, 0.01, 0.009, true)};
    auto path = greedy_path(nodes);
    ASSERT_TRUE(path.is_ok());
    EXPECT_EQ(path->front().bytes, 400);
    EXPECT_EQ(path->back().bytes, 50);
    // float -> int8: 0.009/300; float -> int4w: 0.01/350 (smaller) -> straight to int4w.
    EXPECT_EQ(path->size(), 2u);
}

TEST(MixedSearch, RefusesBadCosts) {
    std::vector<MixedNode> nodes = {node("bad/node", 10, std::nan(""), 0.1, false)};
    auto path = greedy_path(nodes);
    ASSERT_FALSE(path.is_ok());
    EXPECT_NE(path.status().message().find("bad/node"), std::string::npos);
    nodes = {node("n", 10, -1.0, 0.1, false)};
    EXPECT_FALSE(greedy_path(nodes).is_ok());
    MixedNode empty;
    empty.name = "e";
    EXPECT_FALSE(greedy_path({empty}).is_ok());
}

TEST(MixedSearch, WeightBytes) {
    EXPECT_EQ(format_weight_bytes(NodeFormat::Int4w, 9, 3), 5 + 12);
    EXPECT_EQ(format_weight_bytes(NodeFormat::Int4w, 64, 2, 4), 32 + 32);
    EXPECT_EQ(format_weight_bytes(NodeFormat::Int8, 9, 3), 9 + 15);
    EXPECT_EQ(format_weight_bytes(NodeFormat::Fp8, 9, 3), 9 + 15);
    EXPECT_EQ(format_weight_bytes(NodeFormat::Float, 9, 3), 36);
}

TEST(Assignment, ParsesBothFormsAndRoundTrips) {
    auto a = assignment_from_json(
        nlohmann::json::parse(R"({"default": "fp8", "nodes": {"x": "int4w", "y": "float"}})"),
        "f.json");
    ASSERT_TRUE(a.is_ok()) << a.status().message();
    EXPECT_EQ(a->fallback, NodeFormat::Fp8);
    EXPECT_EQ(a->of("x"), NodeFormat::Int4w);
    EXPECT_EQ(a->of("z"), NodeFormat::Fp8);
    auto b = assignment_from_json(assignment_to_json(*a), "g.json");
    ASSERT_TRUE(b.is_ok());
    EXPECT_EQ(b->nodes, a->nodes);
    EXPECT_EQ(b->fallback, a->fallback);
    auto plain = assignment_from_json(nlohmann::json::parse(R"({"x": "int8"})"), "p.json");
    ASSERT_TRUE(plain.is_ok());
    EXPECT_EQ(plain->fallback, NodeFormat::Int8);
    EXPECT_EQ(plain->of("x"), NodeFormat::Int8);
    auto bad =
        assignment_from_json(nlohmann::json::parse(R"({"nodes": {"n1": "int2"}})"), "b.json");
    ASSERT_FALSE(bad.is_ok());
    EXPECT_NE(bad.status().message().find("n1"), std::string::npos);
    EXPECT_FALSE(assignment_from_json(nlohmann::json::parse(R"({"x": 3})"), "b.json").is_ok());
}

TEST(Assignment, UnknownNamesGetCloseMatches) {
    Graph g;
    Node n;
    n.op_type = "Conv";
    n.name = "/model.1/conv/Conv";
    g.nodes.push_back(n);
    Assignment a;
    a.nodes["/model.1/conv/Cnv"] = NodeFormat::Int8;
    Status s = check_assignment_names(g, a, "a.json");
    ASSERT_FALSE(s.is_ok());
    EXPECT_NE(s.message().find("did you mean '/model.1/conv/Conv'"), std::string::npos);
    a.nodes.clear();
    a.nodes["/model.1/conv/Conv"] = NodeFormat::Int4w;
    EXPECT_TRUE(check_assignment_names(g, a, "a.json").is_ok());
}

// Per channel (axis 0) and blocked (blocks of 2 along axis 1): each value is its INT4 code
// (round half to even of w / s, clamped to [-8, 7]) times its scale amax / 7.
TEST(FakeQuantInt4, EqualsIndependentDequantization) {
    const Shape shape{2, 4, 1, 1};
    const std::vector<float> w = {0.7f, -0.35f, 0.05f, 0.1f, -1.4f, 0.2f, 0.6f, 0.3f};
    Tensor t = Tensor::from_vector<float>(DType::Float32, shape, w);
    auto expect = [&](int64_t block) {
        std::vector<float> y(8);
        for (int o = 0; o < 2; ++o) {
            const int nb = block ? 4 / static_cast<int>(block) : 1;
            for (int b = 0; b < nb; ++b) {
                const int lo = block ? b * static_cast<int>(block) : 0;
                const int hi = block ? lo + static_cast<int>(block) : 4;
                float amax = 0;
                for (int i = lo; i < hi; ++i) amax = std::max(amax, std::fabs(w[o * 4 + i]));
                const float s = amax / 7.0f;
                for (int i = lo; i < hi; ++i) {
                    float q = std::nearbyint(w[o * 4 + i] / s);
                    q = std::min(7.0f, std::max(-8.0f, q));
                    y[o * 4 + i] = q * s;
                }
            }
        }
        return y;
    };
    for (int64_t block : {0, 2}) {
        const Tensor y = fake_quantize_weight_int4(t, 0, block);
        const std::vector<float> want = expect(block);
        for (int i = 0; i < 8; ++i) {
            EXPECT_FLOAT_EQ(y.data<float>()[i], want[i]) << "block " << block << " i " << i;
        }
    }
}

}  // namespace
}  // namespace lowbit::quant
