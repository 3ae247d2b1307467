// Program building units on small hand-built graphs and programs: fusion matching, tensor
// lifetimes, and the memory plan with in-place concat aliasing (runtime/fusion.h,
// runtime/lifetimes.h, runtime/memory_plan.h).
#include <gtest/gtest.h>

#include <map>

#include "runtime/fusion.h"
#include "runtime/kernel.h"
#include "runtime/lifetimes.h"
#include "runtime/memory_plan.h"
#include "runtime/program.h"

namespace lowbit {
namespace {

Node node(const std::string& op, std::vector<std::string> ins, std::vector<std::string> outs) {
    Node n;
    n.name = op + "_" + outs[0];
    n.op_type = op;
    n.inputs = std::move(ins);
    n.outputs = std::move(outs);
    return n;
}

// Conv -> Sigmoid -> Mul (SiLU) -> Add(., r), all float32 [1, 8, 4, 4].
struct SiluGraph {
    Graph g;
    std::unordered_map<std::string, TensorDesc> descs;
    std::vector<size_t> order;
    std::vector<TensorDesc> outputs;

    SiluGraph() {
        g.nodes = {node("Relu", {"x"}, {"r"}), node("Conv", {"x", "w"}, {"c"}),
                   node("Sigmoid", {"c"}, {"s"}), node("Mul", {"c", "s"}, {"y"}),
                   node("Add", {"y", "r"}, {"z"})};
        for (const char* t : {"x", "r", "c", "s", "y", "z"}) {
            descs[t] = {t, DType::Float32, {1, 8, 4, 4}};
        }
        descs["w"] = {"w", DType::Float32, {8, 8, 1, 1}};
        order = {0, 1, 2, 3, 4};
        outputs = {descs["z"]};
    }
    FusionMatch match(size_t anchor, bool r_produced = true) const {
        FusionGraph fg(g, descs, order, outputs);
        return match_fusion(fg, anchor, [&](const std::string& t) {
            return t == "r" ? r_produced : t == "x";
        });
    }
};

TEST(FusionMatching, ConvSiluResidual) {
    const SiluGraph sg;
    const FusionMatch m = sg.match(1);
    EXPECT_TRUE(m.conv.silu);
    EXPECT_TRUE(m.conv.residual);
    EXPECT_EQ(m.fused, (std::vector<size_t>{2, 3, 4}));
    // R goes to input 3, after the (absent) bias.
    EXPECT_EQ(m.inputs, (std::vector<std::string>{"x", "w", "", "r"}));
    EXPECT_EQ(m.outputs, (std::vector<std::string>{"z"}));
}

TEST(FusionMatching, ResidualNeedsOperandProducedBefore) {
    const SiluGraph sg;
    const FusionMatch m = sg.match(1, false);
    EXPECT_TRUE(m.conv.silu);
    EXPECT_FALSE(m.conv.residual);
    EXPECT_EQ(m.fused, (std::vector<size_t>{2, 3}));
    EXPECT_EQ(m.outputs, (std::vector<std::string>{"y"}));
}

TEST(FusionMatching, NoSiluWhenSigmoidOutputIsReadElsewhere) {
    SiluGraph sg;
    sg.g.nodes.push_back(node("Relu", {"s"}, {"q"}));
    sg.descs["q"] = sg.descs["s"];
    sg.order.push_back(5);
    const FusionMatch m = sg.match(1);
    EXPECT_FALSE(m.conv.silu);
    // The conv output has two readers (Sigmoid, Mul): no residual either.
    EXPECT_FALSE(m.any());
    EXPECT_EQ(m.outputs, (std::vector<std::string>{"c"}));
}

TEST(FusionMatching, NoFusionIntoAGraphOutput) {
    SiluGraph sg;
    sg.outputs.push_back(sg.descs["y"]);
    const FusionMatch m = sg.match(1);
    EXPECT_TRUE(m.conv.silu);
    EXPECT_FALSE(m.conv.residual);  // y is a graph output: the Add cannot swallow it
}

TEST(FusionMatching, ResidualWithoutSiluAndNonConvAnchors) {
    Graph g;
    g.nodes = {node("Conv", {"x", "w", "b"}, {"c"}), node("Add", {"r", "c"}, {"z"})};
    std::unordered_map<std::string, TensorDesc> descs;
    for (const char* t : {"x", "r", "c", "z"}) descs[t] = {t, DType::Float32, {1, 4, 2, 2}};
    FusionGraph fg(g, descs, {0, 1}, {descs["z"]});
    auto produced = [](const std::string&) { return true; };
    const FusionMatch m = match_fusion(fg, 0, produced);
    EXPECT_FALSE(m.conv.silu);
    EXPECT_TRUE(m.conv.residual);
    EXPECT_EQ(m.inputs, (std::vector<std::string>{"x", "w", "b", "r"}));
    EXPECT_FALSE(match_fusion(fg, 1, produced).any());
    // A float16 residual operand is not fused.
    descs["r"].dtype = DType::Float16;
    EXPECT_FALSE(match_fusion(FusionGraph(g, descs, {0, 1}, {descs["z"]}), 0, produced).any());
}

Step step(size_t node, std::vector<std::string> in, std::vector<std::string> out) {
    Step s;
    s.node = node;
    s.in = std::move(in);
    s.out = std::move(out);
    return s;
}

TEST(Lifetimes, FirstWriterToLastReader) {
    std::vector<Step> steps;
    steps.push_back(step(0, {"x"}, {"a"}));
    steps.push_back(step(1, {"a"}, {"b"}));
    steps.push_back(step(2, {"a", "b", "k"}, {"c"}));  // k: a constant, no lifetime
    const auto life = tensor_lifetimes(steps, {"x"}, {"c"});
    ASSERT_EQ(life.size(), 4u);
    EXPECT_EQ(life.at("x").first, -1);
    EXPECT_EQ(life.at("x").last, 0);
    EXPECT_EQ(life.at("a").first, 0);
    EXPECT_EQ(life.at("a").last, 2);
    EXPECT_EQ(life.at("b").first, 1);
    EXPECT_EQ(life.at("b").last, 2);
    EXPECT_EQ(life.at("c").first, 2);
    EXPECT_EQ(life.at("c").last, 3);  // a graph output lives to the end
    EXPECT_FALSE(life.count("k"));
}

TEST(Lifetimes, SeveralWritersLiveFromTheFirst) {
    std::vector<Step> steps;
    steps.push_back(step(0, {"x"}, {"", "buf"}));
    steps.push_back(step(1, {"x"}, {"b", "buf"}));
    steps.push_back(step(2, {"b"}, {"d"}));
    steps.push_back(step(3, {"buf"}, {"e"}));
    const auto life = tensor_lifetimes(steps, {"x"}, {"e", "d"});
    EXPECT_EQ(life.at("buf").first, 0);
    EXPECT_EQ(life.at("buf").last, 3);
    EXPECT_EQ(life.at("d").last, 4);
    EXPECT_FALSE(life.count(""));
}

// A fast op that accepts every concat slice, and records them.
class SliceOp final : public cpu::FastOp {
public:
    Status run(std::span<const Tensor>, std::span<Tensor>, const ThreadPool&) override {
        return Status::ok();
    }
    std::string describe() const override { return "slice-op"; }
    bool add_concat_slice(size_t out, size_t slot, int64_t offset, int64_t total,
                          bool keep_dense) override {
        slices.push_back({out, slot, offset, total});
        kept.push_back(keep_dense);
        return true;
    }
    bool set_input_in_place(size_t in) override {
        in_place.push_back(in);
        return true;
    }
    std::vector<cpu::ConcatSlice> slices;
    std::vector<bool> kept;
    std::vector<size_t> in_place;
};

// x -> A -> a, x -> B -> b, Concat(a, b) -> c, b -> D -> d; graph outputs c, d. All NHWC.
struct ConcatProgram {
    Graph g;
    Program p;
    SliceOp *a_op, *b_op, *cat_op;

    ConcatProgram() {
        g.nodes = {node("Relu", {"x"}, {"a"}), node("Relu", {"x"}, {"b"}),
                   node("Concat", {"a", "b"}, {"c"}), node("Relu", {"b"}, {"d"})};
        p.stored["x"] = {DType::Float32, {1, 4, 2, 2}, Layout::Nhwc};
        p.stored["a"] = {DType::Float32, {1, 4, 2, 2}, Layout::Nhwc};
        p.stored["b"] = {DType::Float32, {1, 4, 2, 2}, Layout::Nhwc};
        p.stored["c"] = {DType::Float32, {1, 8, 2, 2}, Layout::Nhwc};
        p.stored["d"] = {DType::Float32, {1, 4, 2, 2}, Layout::Nhwc};
        for (size_t k = 0; k < g.nodes.size(); ++k) {
            Step s = step(k, g.nodes[k].inputs, g.nodes[k].outputs);
            auto op = std::make_unique<SliceOp>();
            if (k == 0) a_op = op.get();
            if (k == 1) b_op = op.get();
            if (k == 2) cat_op = op.get();
            s.fast = std::move(op);
            p.steps.push_back(std::move(s));
        }
    }
};

TEST(MemoryPlan, InPlaceConcatAliasesProducerOutputs) {
    ConcatProgram cp;
    Program& p = cp.p;
    plan_in_place_concat(p, cp.g, {"c", "d"});
    // A writes only its slice of c; B writes its slice and keeps b (D reads it).
    EXPECT_EQ(p.steps[0].out, (std::vector<std::string>{"", "c"}));
    EXPECT_EQ(p.steps[1].out, (std::vector<std::string>{"b", "c"}));
    EXPECT_EQ(p.steps[2].in, (std::vector<std::string>{"", ""}));
    ASSERT_EQ(cp.a_op->slices.size(), 1u);
    EXPECT_EQ(cp.a_op->slices[0].offset, 0);
    EXPECT_EQ(cp.a_op->slices[0].total, 8);
    EXPECT_EQ(cp.a_op->slices[0].slot, 1u);
    EXPECT_FALSE(cp.a_op->kept[0]);
    ASSERT_EQ(cp.b_op->slices.size(), 1u);
    EXPECT_EQ(cp.b_op->slices[0].offset, 4);
    EXPECT_TRUE(cp.b_op->kept[0]);
    EXPECT_EQ(cp.cat_op->in_place, (std::vector<size_t>{0, 1}));

    // The buffer lives from its first writer; `a` needs no memory at all.
    const auto life = tensor_lifetimes(p.steps, {"x"}, {"c", "d"});
    EXPECT_EQ(life.at("c").first, 0);
    EXPECT_FALSE(life.count("a"));
    plan_program_memory(p, life, true, static_cast<int>(p.steps.size()));
    ASSERT_TRUE(p.arena);
    EXPECT_EQ(p.arena->size(), p.arena_bytes);
    // Tensors alive at the same time never share bytes.
    for (const auto& [n1, l1] : life) {
        for (const auto& [n2, l2] : life) {
            if (n1 >= n2 || l1.first > l2.last || l2.first > l1.last) continue;
            const size_t o1 = p.slots[p.slot_of.at(n1)].offset;
            const size_t o2 = p.slots[p.slot_of.at(n2)].offset;
            const size_t b1 = static_cast<size_t>(shape_numel(p.stored.at(n1).shape)) * 4;
            const size_t b2 = static_cast<size_t>(shape_numel(p.stored.at(n2).shape)) * 4;
            EXPECT_TRUE(o1 + b1 <= o2 || o2 + b2 <= o1) << n1 << " vs " << n2;
        }
    }
}

TEST(MemoryPlan, PlainConcatAndGraphOutputInputsAreNotAliased) {
    ConcatProgram cp;
    cp.p.stored["c"].layout = Layout::Plain;
    plan_in_place_concat(cp.p, cp.g, {"c", "d"});
    EXPECT_TRUE(cp.a_op->slices.empty());
    EXPECT_EQ(cp.p.steps[2].in, (std::vector<std::string>{"a", "b"}));

    ConcatProgram out;
    plan_in_place_concat(out.p, out.g, {"c", "d", "a"});
    // `a` is a graph output: written in place and kept.
    EXPECT_EQ(out.p.steps[0].out, (std::vector<std::string>{"a", "c"}));
    EXPECT_TRUE(out.a_op->kept[0]);
}

// One step per node: Relu and Add as fast ops (SliceOp), the others as reference steps, counted
// in the report ("fast", "reference").
void add_steps(Program& p, const Graph& g) {
    for (size_t k = 0; k < g.nodes.size(); ++k) {
        Step s = step(k, g.nodes[k].inputs, g.nodes[k].outputs);
        s.kernel = "reference";
        if (g.nodes[k].op_type == "Relu" || g.nodes[k].op_type == "Add") {
            s.fast = std::make_unique<SliceOp>();
            s.kernel = "fast";
        }
        ++p.report.kernels[s.kernel];
        p.steps.push_back(std::move(s));
    }
}

// A reference kernel that only says where its outputs' runs start (Kernel::output_runs_of_input).
class RunsKernel final : public Kernel {
public:
    explicit RunsKernel(std::vector<int64_t> runs) : runs_(std::move(runs)) {}
    Status prepare(PrepareContext&) override { return Status::ok(); }
    Status run(RunContext&) override { return Status::ok(); }
    std::vector<int64_t> output_runs_of_input() const override { return runs_; }

private:
    std::vector<int64_t> runs_;
};

// A kernel per node of g: RunsKernel for the listed nodes, none (a fast step's node) elsewhere.
std::vector<std::unique_ptr<Kernel>> runs_kernels(
    const Graph& g, const std::map<size_t, std::vector<int64_t>>& runs) {
    std::vector<std::unique_ptr<Kernel>> kernels(g.nodes.size());
    for (const auto& [node, r] : runs) kernels[node] = std::make_unique<RunsKernel>(r);
    return kernels;
}

// x -> A -> a (plain) -> Reshape -> r -> Flatten -> f -> Split -> f0, f1 (elements 0 and 4 of
// a, bytes 0 and 16); f1 read by D at the end. A Reshape of an NHWC tensor and of a constant,
// and a Split whose kernel reports no runs (batch 2), stay steps.
TEST(MemoryPlan, CopyStepsBecomeAliasesOfTheirRoot) {
    Graph g;
    g.nodes = {node("Relu", {"x"}, {"a"}),          node("Reshape", {"a", "s"}, {"r"}),
               node("Flatten", {"r"}, {"f"}),        node("Split", {"f"}, {"f0", "f1"}),
               node("Relu", {"x"}, {"n"}),           node("Reshape", {"n", "s"}, {"nr"}),
               node("Reshape", {"k", "s"}, {"kr"}),  node("Split", {"b"}, {"b0", "b1"}),
               node("Add", {"f1", "nr"}, {"d"})};
    Program p;
    for (const char* t : {"x", "a", "n", "d"}) {
        p.stored[t] = {DType::Float32, {1, 4, 2, 2}, Layout::Plain};
    }
    p.stored["n"].layout = Layout::Nhwc;
    for (const char* t : {"r", "f", "nr", "kr"}) {
        p.stored[t] = {DType::Float32, {1, 16}, Layout::Plain};
    }
    p.stored["f0"] = {DType::Float32, {1, 4}, Layout::Plain};
    p.stored["f1"] = {DType::Float32, {1, 12}, Layout::Plain};
    p.stored["b"] = {DType::Float32, {2, 4}, Layout::Plain};
    p.stored["b0"] = {DType::Float32, {2, 1}, Layout::Plain};
    p.stored["b1"] = {DType::Float32, {2, 3}, Layout::Plain};
    add_steps(p, g);
    alias_copy_steps(p, runs_kernels(g, {{1, {0}}, {2, {0}}, {3, {0, 4}}, {5, {0}}, {6, {0}}}));
    ASSERT_EQ(p.aliases.size(), 4u);
    for (const char* t : {"r", "f", "f0", "f1"}) EXPECT_EQ(p.aliases.at(t).root, "a") << t;
    EXPECT_EQ(p.aliases.at("f0").offset, 0u);
    EXPECT_EQ(p.aliases.at("f1").offset, 16u);
    ASSERT_EQ(p.steps.size(), 6u);  // Reshape(a), Flatten and the first Split gone
    EXPECT_EQ(p.report.kernels.at("alias"), 3);
    EXPECT_EQ(p.report.kernels.at("reference"), 3);
    const auto life = tensor_lifetimes(p.steps, {"x"}, {"d", "r"}, p.aliases);
    for (const char* t : {"r", "f", "f0", "f1"}) EXPECT_FALSE(life.count(t)) << t;
    EXPECT_EQ(life.at("a").first, 0);
    EXPECT_EQ(life.at("a").last, 6);  // r is a graph output
    const auto inner = tensor_lifetimes(p.steps, {"x"}, {"d"}, p.aliases);
    EXPECT_EQ(inner.at("a").last, 5);  // D (step 5 now) reads f1
    plan_program_memory(p, life, true, static_cast<int>(p.steps.size()));
    EXPECT_EQ(p.slot_of.at("f1"), p.slot_of.at("a"));
    EXPECT_EQ(p.slot_of.at("r"), p.slot_of.at("a"));
    EXPECT_NE(p.slot_of.at("nr"), p.slot_of.at("a"));
}

// The plain Concat on axis 1 of a [1, 2, 4] and b3 [1, 3, 4] (a Reshape of b [1, 12]) into
// c [1, 5, 4]: a and b (with b3) become runs of c at bytes 0 and 32 and the Concat step goes.
// Concats of e with itself (the same tensor twice), of e and the graph input x, and on axis 2
// (a dim of 2 before it) stay steps.
TEST(MemoryPlan, ConcatInputsBecomeRunsOfItsOutput) {
    Graph g;
    g.nodes = {node("Relu", {"x"}, {"a"}),         node("Relu", {"x"}, {"b"}),
               node("Reshape", {"b", "s"}, {"b3"}), node("Concat", {"a", "b3"}, {"c"}),
               node("Relu", {"x"}, {"e"}),          node("Concat", {"e", "e"}, {"ee"}),
               node("Concat", {"e", "x"}, {"ex"}),  node("Concat", {"e", "e"}, {"e2"}),
               node("Relu", {"c"}, {"d"})};
    for (size_t k : {3, 5, 6}) g.nodes[k].attrs["axis"] = Attr::make_int(1);
    g.nodes[7].attrs["axis"] = Attr::make_int(-1);
    Program p;
    p.stored["x"] = {DType::Float32, {1, 2, 4}, Layout::Plain};
    p.stored["a"] = {DType::Float32, {1, 2, 4}, Layout::Plain};
    p.stored["b"] = {DType::Float32, {1, 12}, Layout::Plain};
    p.stored["b3"] = {DType::Float32, {1, 3, 4}, Layout::Plain};
    p.stored["c"] = {DType::Float32, {1, 5, 4}, Layout::Plain};
    p.stored["e"] = {DType::Float32, {1, 2, 4}, Layout::Plain};
    p.stored["ee"] = {DType::Float32, {1, 4, 4}, Layout::Plain};
    p.stored["ex"] = {DType::Float32, {1, 4, 4}, Layout::Plain};
    p.stored["e2"] = {DType::Float32, {1, 2, 8}, Layout::Plain};
    p.stored["d"] = {DType::Float32, {1, 5, 4}, Layout::Plain};
    add_steps(p, g);
    alias_copy_steps(p, runs_kernels(g, {{2, {0}}}));
    alias_concat_inputs(p, g, {"x"});
    ASSERT_EQ(p.aliases.size(), 3u);
    EXPECT_EQ(p.aliases.at("a").root, "c");
    EXPECT_EQ(p.aliases.at("a").offset, 0u);
    EXPECT_EQ(p.aliases.at("b").root, "c");
    EXPECT_EQ(p.aliases.at("b").offset, 32u);
    EXPECT_EQ(p.aliases.at("b3").root, "c");  // re-rooted with b
    EXPECT_EQ(p.aliases.at("b3").offset, 32u);
    ASSERT_EQ(p.steps.size(), 7u);  // the Reshape and the first Concat gone
    EXPECT_EQ(p.report.kernels.at("alias"), 2);
    EXPECT_EQ(p.report.kernels.at("reference"), 3);
    // c lives from a's producer (step 0) to d's (step 6).
    const auto life = tensor_lifetimes(p.steps, {"x"}, {"d", "ee", "ex", "e2"}, p.aliases);
    EXPECT_FALSE(life.count("a"));
    EXPECT_FALSE(life.count("b"));
    EXPECT_EQ(life.at("c").first, 0);
    EXPECT_EQ(life.at("c").last, 6);
}

TEST(MemoryPlan, WithoutReuseEveryTensorHasItsOwnBytes) {
    ConcatProgram cp;
    Program& p = cp.p;
    const auto life = tensor_lifetimes(p.steps, {"x"}, {"c", "d"});
    plan_program_memory(p, life, false, static_cast<int>(p.steps.size()));
    size_t sum = 0;
    for (const auto& [name, l] : life) {
        sum += static_cast<size_t>(shape_numel(p.stored.at(name).shape)) * 4;
    }
    EXPECT_EQ(p.arena_bytes, sum);  // all sizes are multiples of 64 bytes here
}

}  // namespace
}  // namespace lowbit
