// The step graph of `lowbit run` (pipeline/step_graph.h, pipeline/run_workflow.h): steps run in
// order, each with its log; a step is skipped when its command lines, inputs' content and the
// program are unchanged, rerun when any of them changed, and --force/--force-step redo steps.
// Fake step functions stand in for the jobs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "pipeline/run_workflow.h"
#include "pipeline/step_graph.h"

namespace lowbit::pipeline {
namespace {

namespace fs = std::filesystem;

void write(const fs::path& p, const std::string& text) {
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << text;
}

std::string read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

class StepGraphTest : public ::testing::Test {
protected:
    void SetUp() override {
        root_ = fs::temp_directory_path() /
                ("lowbit_step_graph_" +
                 std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
                 ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(root_);
        fs::create_directories(root_ / "logs");
        write(root_ / "in.txt", "v1");
        progress_ = std::tmpfile();
    }
    void TearDown() override {
        std::fclose(progress_);
        fs::remove_all(root_);
    }

    std::string p(const std::string& rel) const { return (root_ / rel).string(); }

    // A fake step: reads `in`, writes "<name>(<content of in>)" to `out` and a line to its log.
    Step fake(const std::string& name, const std::string& in, const std::string& out) {
        Step s;
        s.name = name;
        s.title = "fake " + name;
        s.commands = {{name, p(in), "--out", p(out)}};
        s.inputs = {p(in)};
        s.outputs = {p(out)};
        s.run = [this, name, in = p(in), out = p(out)](StepContext& ctx) {
            calls_.push_back(name);
            std::fprintf(ctx.log, "%s ran\n", name.c_str());
            write(out, name + "(" + read(in) + ")");
            return Status::ok();
        };
        return s;
    }
    // in.txt -> a -> a.txt -> b -> b.txt -> c -> c.txt
    std::vector<Step> chain() {
        return {fake("a", "in.txt", "a.txt"), fake("b", "a.txt", "b.txt"),
                fake("c", "b.txt", "c.txt")};
    }

    std::vector<StepOutcome> run(std::vector<Step> steps, RunStepsOptions o = {}) {
        calls_.clear();
        o.progress = progress_;
        if (o.program_hash.empty()) o.program_hash = "program-v1";
        Fingerprinter fp;  // a fresh one, as a new `lowbit run` process would have
        auto r = run_steps(steps, root_.string(), o, fp);
        EXPECT_TRUE(r.is_ok()) << r.status().message();
        return r.is_ok() ? *r : std::vector<StepOutcome>{};
    }

    static std::vector<std::string> statuses(const std::vector<StepOutcome>& v) {
        std::vector<std::string> s;
        for (const StepOutcome& o : v) s.push_back(step_status_name(o.status));
        return s;
    }

    fs::path root_;
    std::FILE* progress_ = nullptr;
    std::vector<std::string> calls_;
};

using Names = std::vector<std::string>;

TEST_F(StepGraphTest, RunsInOrderWithLogsAndRecords) {
    const auto out = run(chain());
    EXPECT_EQ(calls_, (Names{"a", "b", "c"}));
    EXPECT_EQ(statuses(out), (Names{"ran", "ran", "ran"}));
    EXPECT_EQ(out[1].name, "b");
    EXPECT_EQ(out[1].title, "fake b");
    EXPECT_EQ(read(root_ / "c.txt"), "c(b(a(v1)))");
    EXPECT_EQ(read(root_ / "logs" / "b.log"), "b ran\n");
    for (const char* s : {"a", "b", "c"}) {
        EXPECT_TRUE(fs::exists(manifest_path(root_.string(), s))) << s;
    }
}

TEST_F(StepGraphTest, SecondRunSkipsEverything) {
    run(chain());
    const auto out = run(chain());
    EXPECT_TRUE(calls_.empty());
    EXPECT_EQ(statuses(out), (Names{"skipped", "skipped", "skipped"}));
    ASSERT_TRUE(out[0].recorded_seconds.has_value());
    EXPECT_GE(*out[0].recorded_seconds, 0.0);
    EXPECT_EQ(out[0].seconds, 0.0);
}

TEST_F(StepGraphTest, ChangedInputRerunsItsStepAndWhatDependsOnIt) {
    run(chain());
    write(root_ / "in.txt", "v2");
    EXPECT_EQ(statuses(run(chain())), (Names{"ran", "ran", "ran"}));
    EXPECT_EQ(read(root_ / "c.txt"), "c(b(a(v2)))");
}

TEST_F(StepGraphTest, SameBytesRewrittenDoNotRerun) {
    run(chain());
    write(root_ / "in.txt", "v1");  // rewritten, same content
    EXPECT_EQ(statuses(run(chain())), (Names{"skipped", "skipped", "skipped"}));
}

TEST_F(StepGraphTest, ChangedCommandLineRerunsOnlyThatStep) {
    run(chain());
    std::vector<Step> steps = chain();
    steps[1].commands[0].push_back("--max-images=5");
    EXPECT_EQ(statuses(run(std::move(steps))), (Names{"skipped", "ran", "skipped"}));
    EXPECT_EQ(calls_, (Names{"b"}));
}

TEST_F(StepGraphTest, ChangedNoteRerunsThatStep) {
    std::vector<Step> steps = chain();
    steps[2].notes = {{"(write-results)", "x"}};
    run(steps);
    steps = chain();
    steps[2].notes = {{"(write-results)", "y"}};
    EXPECT_EQ(statuses(run(std::move(steps))), (Names{"skipped", "skipped", "ran"}));
}

TEST_F(StepGraphTest, ChangedOutputRerunsTheStep) {
    run(chain());
    write(root_ / "b.txt", "edited by hand");
    // b reruns and writes the same bytes as before, so c is still up to date.
    EXPECT_EQ(statuses(run(chain())), (Names{"skipped", "ran", "skipped"}));
    fs::remove(root_ / "c.txt");
    EXPECT_EQ(statuses(run(chain())), (Names{"skipped", "skipped", "ran"}));
}

TEST_F(StepGraphTest, OtherProgramRerunsEverything) {
    run(chain());
    RunStepsOptions o;
    o.program_hash = "program-v2";
    EXPECT_EQ(statuses(run(chain(), o)), (Names{"ran", "ran", "ran"}));
}

TEST_F(StepGraphTest, ForcedStepRerunsOnlyItself) {
    run(chain());
    RunStepsOptions o;
    o.forced = {"c"};
    EXPECT_EQ(statuses(run(chain(), o)), (Names{"skipped", "skipped", "ran"}));
    EXPECT_EQ(calls_, (Names{"c"}));
    o.forced.clear();
    o.force = true;
    EXPECT_EQ(statuses(run(chain(), o)), (Names{"ran", "ran", "ran"}));
}

TEST_F(StepGraphTest, UnknownForcedStepIsAUsageError) {
    const std::vector<Step> steps = chain();
    EXPECT_TRUE(check_step_names(steps, {"a", "c"}).is_ok());
    const Status st = check_step_names(steps, {"nope"});
    EXPECT_EQ(st.code(), StatusCode::InvalidArgument);
    EXPECT_NE(st.message().find("'nope'"), std::string::npos);
}

TEST_F(StepGraphTest, MissingInputLeavesTheStepOutAndGoesOn) {
    std::vector<Step> steps = chain();
    steps.insert(steps.begin() + 1, fake("x", "absent.txt", "x.txt"));
    const auto out = run(std::move(steps));
    EXPECT_EQ(statuses(out), (Names{"ran", "unavailable", "ran", "ran"}));
    EXPECT_NE(out[1].why.find("absent.txt"), std::string::npos);
    EXPECT_EQ(calls_, (Names{"a", "b", "c"}));
}

TEST_F(StepGraphTest, FailedStepStopsTheRunUnrecorded) {
    std::vector<Step> steps = chain();
    steps[1].run = [](StepContext& ctx) {
        std::fprintf(ctx.log, "partial\n");
        return invalid("bad option");
    };
    calls_.clear();
    RunStepsOptions o;
    o.progress = progress_;
    Fingerprinter fp;
    auto r = run_steps(steps, root_.string(), o, fp);
    ASSERT_FALSE(r.is_ok());
    // A failed step fails the run (exit 1) whatever its own error; the message says what the
    // standalone command would have exited with.
    EXPECT_NE(r.status().code(), StatusCode::InvalidArgument);
    EXPECT_NE(r.status().message().find("step b failed (exit 2)"), std::string::npos);
    EXPECT_NE(r.status().message().find("b.log"), std::string::npos);
    EXPECT_EQ(calls_, (Names{"a"}));
    EXPECT_EQ(read(root_ / "logs" / "b.log"), "partial\n");
    EXPECT_FALSE(fs::exists(manifest_path(root_.string(), "b")));
    std::rewind(progress_);
    char buf[4096] = {};
    const size_t n = std::fread(buf, 1, sizeof buf - 1, progress_);
    EXPECT_NE(std::string(buf, n).find("lowbit b: error: bad option"), std::string::npos);
}

TEST_F(StepGraphTest, PrepareRunsBeforeTheCheck) {
    run(chain());
    std::vector<Step> steps = chain();
    // Inputs known only once earlier steps ran (as compare's): set in prepare.
    steps[2].inputs.clear();
    steps[2].prepare = [this](Step& s) { s.inputs = {p("b.txt"), p("in.txt")}; };
    EXPECT_EQ(statuses(run(steps)), (Names{"skipped", "skipped", "ran"}));
    EXPECT_EQ(statuses(run(steps)), (Names{"skipped", "skipped", "skipped"}));
}

TEST(StepSpec, RecordsCommandsNotesThenProgram) {
    Step s;
    s.name = "eval";
    s.commands = {{"eval", "m.onnx"}};
    s.notes = {{"(write-results)", "a"}};
    s.inputs = {"m.onnx"};
    s.outputs = {"out.json"};
    const StepSpec spec = step_spec(s, "h");
    EXPECT_EQ(spec.name, "eval");
    EXPECT_EQ(spec.argv, (std::vector<std::vector<std::string>>{
                             {"eval", "m.onnx"}, {"(write-results)", "a"}, {"(lowbit)", "h"}}));
    EXPECT_EQ(spec.inputs, s.inputs);
    EXPECT_EQ(spec.outputs, s.outputs);
    EXPECT_EQ(step_spec(s, "").argv.size(), 2u);
}

TEST(JoinCommand, QuotesWordsAShellWouldSplit) {
    EXPECT_EQ(join_command({"eval", "a b.onnx", "", "--x", "it's"}),
              "eval 'a b.onnx' '' --x 'it's'");
}

// The step graph of `lowbit run` itself, built from a resolved plan (nothing is read).
RunPlan sample_plan() {
    RunPlan plan;
    RunOptions& o = plan.options;
    o.root = "/r";
    o.model = "/m/net.onnx";
    o.ann = "/d/ann.json";
    o.images = "/d/img";
    o.calib_list = "/c/list.txt";
    o.imgsz = 320;
    o.modes = {"fp8", "int8"};
    o.ks = {0, 5};
    o.threads = 2;
    o.max_images = 7;
    plan.calib_images = {"/c/1.jpg", "/c/2.jpg"};
    plan.method = "mse";
    return plan;
}

TEST(RunSteps, OrderAndNames) {
    const std::vector<Step> steps = build_run_steps(sample_plan());
    Names names;
    for (const Step& s : steps) {
        names.push_back(s.name);
        EXPECT_TRUE(s.run || s.prepare) << s.name;
        EXPECT_FALSE(s.title.empty()) << s.name;
    }
    EXPECT_EQ(names,
              (Names{"smoke", "baseline", "calib", "int8", "int8-eval", "head-exclude", "int8-head",
                     "int8-head-eval", "sensitivity-fp8", "sensitivity-int8", "schemes-fp8",
                     "schemes-int8", "candidates-fp8", "candidates-int8", "compare"}));
}

TEST(RunSteps, CommandLinesInputsAndOutputs) {
    const std::vector<Step> steps = build_run_steps(sample_plan());
    auto find = [&](const std::string& name) -> const Step& {
        for (const Step& s : steps) {
            if (s.name == name) return s;
        }
        throw std::runtime_error(name);
    };
    const Step& calib = find("calib");
    EXPECT_EQ(calib.commands,
              (std::vector<Names>{{"calib", "--list", "/c/list.txt", "--imgsz", "320", "--out",
                                   "/r/calib/calib.npy", "--threads", "2"}}));
    EXPECT_EQ(calib.inputs, (Names{"/c/list.txt", "/c/1.jpg", "/c/2.jpg"}));
    EXPECT_EQ(calib.title, "calibration tensor (2 images at 320)");

    const Step& eval = find("int8-eval");
    EXPECT_EQ(
        eval.commands,
        (std::vector<Names>{{"eval", "/r/onnx/net-int8-qdq.onnx", "--out",
                             "/r/int8-coco/metrics.json", "--ann", "/d/ann.json", "--images",
                             "/d/img", "--max-images", "7", "--imgsz", "320", "--threads", "2"}}));
    EXPECT_EQ(eval.notes, (std::vector<Names>{{"(write-results)", "/r/int8-coco/metrics.json",
                                               "/r/results/int8.json", "/r/onnx/net-int8-qdq.onnx",
                                               "int8", "int8", "0", "mse", ""}}));
    EXPECT_EQ(eval.inputs, (Names{"/r/onnx/net-int8-qdq.onnx", "/d/ann.json", "/d/img"}));
    EXPECT_EQ(eval.outputs, (Names{"/r/int8-coco/metrics.json", "/r/results/int8.json"}));

    const Step& head = find("int8-head");
    EXPECT_EQ(head.inputs,
              (Names{"/m/net.onnx", "/r/calib/calib.npy", "/r/nodes_to_exclude_head.txt"}));
    EXPECT_EQ(head.commands[0][4], "--exclude-nodes-file");

    const Step& cand = find("candidates-int8");
    EXPECT_EQ(cand.outputs, (Names{"/r/candidates/net-int8-k0.onnx", "/r/results/int8_k0.json",
                                   "/r/candidates/net-int8-k5.onnx", "/r/results/int8_k5.json"}));
    EXPECT_EQ(cand.inputs, (Names{"/m/net.onnx", "/r/calib/calib.npy", "/r/schemes/int8",
                                  "/d/ann.json", "/d/img"}));

    const Step& sens = find("sensitivity-fp8");
    EXPECT_EQ(sens.outputs,
              (Names{"/r/sensitivity/fp8/report.json", "/r/sensitivity/fp8/report.md"}));
    EXPECT_EQ(find("schemes-fp8").inputs, (Names{"/r/sensitivity/fp8/report.json", "/m/net.onnx"}));
    EXPECT_EQ(find("compare").outputs, (Names{"/r/summary.md", "/r/report.html"}));
}

TEST(RunSteps, CalibrationMethodReachesEveryQuantization) {
    RunPlan plan = sample_plan();
    plan.options.calibration_method = "max";
    for (const Step& s : build_run_steps(plan)) {
        const bool quantizes = s.name.rfind("int8", 0) == 0 ||
                               s.name.rfind("sensitivity", 0) == 0 ||
                               s.name.rfind("candidates", 0) == 0;
        if (!quantizes || s.name.find("eval") != std::string::npos) continue;
        const Names& argv = s.commands.at(0);
        auto it = std::find(argv.begin(), argv.end(), "--calibration-method");
        ASSERT_NE(it, argv.end()) << s.name;
        EXPECT_EQ(*(it + 1), "max") << s.name;
    }
}

}  // namespace
}  // namespace lowbit::pipeline
