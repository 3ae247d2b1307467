#include "pipeline/run_workflow.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "core/path_guard.h"
#include "data/image_list.h"
#include "onnx/model_io.h"
#include "pipeline/run_modes.h"
#include "pipeline/jobs.h"
#include "pipeline/merge.h"
#include "pipeline/results_file.h"
#include "quant/quantize_model.h"

namespace lowbit::pipeline {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using Argv = std::vector<std::string>;

std::string path_in(const std::string& root, const std::string& rel) {
    return (fs::path(root) / rel).string();
}

Argv cat(Argv a, const Argv& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

std::string local_timestamp() {
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    localtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d_%H-%M-%S", &tm);
    return buf;
}

// The record of a results file written from an eval metrics.json (a step note).
Argv results_note(const std::string& metrics, const std::string& out, const std::string& model,
                  const VariantInfo& v) {
    return {
        "(write-results)",    metrics, out, model, v.name, v.mode, std::to_string(v.excluded_nodes),
        v.calibration_method, v.scheme};
}

// Names and shared pieces of the steps, computed once from the plan.
struct Layout {
    const RunPlan& plan;
    const RunOptions& o;
    std::string R, stem, threads, calib_npy;
    Argv eval_data;   // eval flags of every evaluation
    Argv quant_opts;  // quantize flags of every quantization
    Argv data_inputs;
    Argv ks;

    explicit Layout(const RunPlan& p) : plan(p), o(p.options) {
        R = o.root;
        stem = fs::path(o.model).stem().string();
        threads = std::to_string(o.threads);
        calib_npy = path_in(R, "calib/calib.npy");
        eval_data = {"--ann",        o.ann,
                     "--images",     o.images,
                     "--max-images", std::to_string(o.max_images),
                     "--imgsz",      std::to_string(o.imgsz),
                     "--threads",    threads};
        quant_opts = {"--calib",        calib_npy,   "--high-precision",
                      o.high_precision, "--threads", threads};
        if (!o.calibration_method.empty()) {
            quant_opts.insert(quant_opts.end(), {"--calibration-method", o.calibration_method});
        }
        data_inputs = {o.ann, o.images};
        for (int k : o.ks) ks.push_back(std::to_string(k));
    }

    EvalJob eval_job(const std::string& onnx, const std::string& metrics) const {
        EvalJob e;
        e.model = onnx;
        e.out = metrics;
        e.ann = o.ann;
        e.images = o.images;
        e.max_images = o.max_images;
        e.imgsz = o.imgsz;
        e.threads = o.threads;
        e.engine = o.engine;
        return e;
    }
    QuantizeJob quantize_job(const std::string& out) const {
        QuantizeJob q;
        q.model = o.model;
        q.mode = "int8";
        q.out = out;
        q.calib.npy = calib_npy;
        q.high_precision = o.high_precision;
        q.threads = o.threads;
        q.engine = o.engine;
        if (!o.calibration_method.empty()) q.method.method = o.calibration_method;
        return q;
    }
};

// A job as a step function.
template <typename Job>
std::function<Status(StepContext&)> job_fn(Job job) {
    return [job](StepContext& ctx) { return run_job(job, ctx.log); };
}

Step smoke_step(const Layout& L) {
    SmokeJob job;
    job.model = L.o.model;
    job.engine = L.o.engine;
    job.out_dir = path_in(L.R, "baseline-onnx");
    job.threads = L.o.threads;
    return {"smoke",
            "random-input smoke test",
            {{"smoke", L.o.model, "--out", job.out_dir, "--threads", L.threads}},
            {},
            {L.o.model},
            {path_in(L.R, "baseline-onnx/summary.json")},
            job_fn(job),
            {}, {}, {}, false};
}

// Evaluates as `job` says, then writes the results file `results` of variant `v` from the
// metrics it wrote.
std::function<Status(StepContext&)> eval_fn(const EvalJob& job, const std::string& results,
                                            const VariantInfo& v) {
    return [job, results, v](StepContext& ctx) {
        LOWBIT_TRY(run_job(job, ctx.log));
        return write_results_from_metrics(job.out, results, job.model, v);
    };
}

// A job as a shard function and a merge function (pipeline/merge.h) for a step that is split.
template <typename Job>
void set_shard_fns(Step& s, Job job) {
    s.run_shard = [job](StepContext& ctx, const ShardOptions& shard) {
        Job j = job;
        j.shard = shard;
        return run_job(j, ctx.log);
    };
    s.run_merged = [](StepContext& ctx, const std::string& dir) {
        return run_job(MergeJob{dir, true}, ctx.log);
    };
}

// An evaluation step's functions: the job then the results file, whole or from shards.
void set_eval_fns(Step& s, const EvalJob& job, const std::string& results, const VariantInfo& v) {
    s.run = eval_fn(job, results, v);
    set_shard_fns(s, job);
    s.run_merged = [job, results, v](StepContext& ctx, const std::string& dir) {
        LOWBIT_TRY(run_job(MergeJob{dir, true}, ctx.log));
        return write_results_from_metrics(job.out, results, job.model, v);
    };
}

// Evaluates `onnx` into `metrics`, then writes results/<variant>.json from it.
Step eval_step(const Layout& L, const std::string& name, const std::string& title,
               const std::string& onnx, const std::string& metrics, const VariantInfo& v) {
    const std::string results = path_in(L.R, "results/" + v.name + ".json");
    Step s;
    s.name = name;
    s.title = title;
    s.commands = {cat({"eval", onnx, "--out", metrics}, L.eval_data)};
    s.notes = {results_note(metrics, results, onnx, v)};
    s.inputs = cat({onnx}, L.data_inputs);
    s.outputs = {metrics, results};
    set_eval_fns(s, L.eval_job(onnx, metrics), results, v);
    return s;
}

Step calib_step(const Layout& L) {
    CalibJob job;
    job.list = L.o.calib_list;
    job.imgsz = L.o.imgsz;
    job.out = L.calib_npy;
    job.threads = L.o.threads;
    return {
        "calib",
        fmt::format("calibration tensor ({} images at {})", L.plan.calib_images.size(), L.o.imgsz),
        {{"calib", "--list", L.o.calib_list, "--imgsz", std::to_string(L.o.imgsz), "--out",
          L.calib_npy, "--threads", L.threads}},
        {},
        cat({L.o.calib_list}, L.plan.calib_images),
        {L.calib_npy},
        job_fn(job),
        {}, {}, {}, false};
}

Step int8_step(const Layout& L, const std::string& onnx) {
    return {"int8",
            "INT8 quantization",
            {cat({"quantize", L.o.model, "--mode", "int8", "--out", onnx}, L.quant_opts)},
            {},
            {L.o.model, L.calib_npy},
            {onnx},
            job_fn(L.quantize_job(onnx)),
            {}, {}, {}, false};
}

Step head_exclude_step(const Layout& L, const std::string& head_txt) {
    HeadExcludeJob job;
    job.model = L.o.model;
    job.out = head_txt;
    return {"head-exclude",
            "detection-head exclusion list",
            {{"head-exclude", L.o.model, "--out", head_txt}},
            {},
            {L.o.model},
            {head_txt},
            job_fn(job),
            {}, {}, {}, false};
}

Step int8_head_step(const Layout& L, const std::string& head_txt, const std::string& onnx) {
    QuantizeJob job = L.quantize_job(onnx);
    job.placement.exclude_files = {head_txt};
    return {"int8-head",
            "INT8 quantization, head kept in high precision",
            {cat({"quantize", L.o.model, "--mode", "int8", "--exclude-nodes-file", head_txt,
                  "--out", onnx},
                 L.quant_opts)},
            {},
            {L.o.model, L.calib_npy, head_txt},
            {onnx},
            job_fn(job),
            {}, {}, {}, false};
}

Step int8_head_eval_step(const Layout& L, const std::string& head_txt, const std::string& onnx) {
    const std::string metrics = path_in(L.R, "int8-head-coco/metrics.json");
    const VariantInfo v = {"int8_head", "int8", std::nullopt, 0, L.plan.method, head_txt};
    Step s =
        eval_step(L, "int8-head-eval", "INT8 (head excluded) COCO evaluation", onnx, metrics, v);
    // The exclusion count is known once head-exclude has run.
    s.prepare = [job = L.eval_job(onnx, metrics), results = s.outputs.back(), v](Step& st) {
        VariantInfo counted = v;
        auto names = read_node_list(v.scheme);
        counted.excluded_nodes = names ? static_cast<int64_t>(names->size()) : 0;
        st.notes = {results_note(job.out, results, job.model, counted)};
        set_eval_fns(st, job, results, counted);
    };
    return s;
}

Step sensitivity_step(const Layout& L, const std::string& m) {
    const std::string report_json = path_in(L.R, "sensitivity/" + m + "/report.json");
    SensitivityJob job;
    job.model = L.o.model;
    job.engine = L.o.engine;
    job.mode = sensitivity_mode_for(m);
    job.calib.npy = L.calib_npy;
    job.images = L.o.sensitivity_images;
    job.metric = "output-mse";
    job.out = report_json;
    job.threads = L.o.threads;
    Argv argv = {"sensitivity", L.o.model,    "--mode",   job.mode,
                 "--calib",     L.calib_npy,  "--images", std::to_string(L.o.sensitivity_images),
                 "--metric",    "output-mse", "--out",    report_json,
                 "--threads",   L.threads};
    if (!L.o.calibration_method.empty()) {
        argv.insert(argv.end(), {"--calibration-method", L.o.calibration_method});
        job.method.method = L.o.calibration_method;
    }
    Step s{"sensitivity-" + m,
           fmt::format("{} per-node sensitivity ({} images)", m, L.o.sensitivity_images),
           {argv},
           {},
           {L.o.model, L.calib_npy},
           {report_json, path_in(L.R, "sensitivity/" + m + "/report.md")},
           job_fn(job),
           {}, {}, {}, false};
    set_shard_fns(s, job);
    return s;
}

Step schemes_step(const Layout& L, const std::string& m) {
    SchemesJob job;
    job.report = path_in(L.R, "sensitivity/" + m + "/report.json");
    job.ks = L.o.ks;
    job.out_dir = path_in(L.R, "schemes/" + m);
    job.model = L.o.model;
    return {"schemes-" + m,
            m + " top-K exclusion schemes",
            {cat(cat({"schemes", "--report", job.report, "--ks"}, L.ks),
                 {"--out-dir", job.out_dir, "--model", L.o.model})},
            {},
            {job.report, L.o.model},
            {job.out_dir},
            job_fn(job),
            {}, {}, {}, false};
}

// `results` receives the results files the step writes.
Step candidates_step(const Layout& L, const std::string& m, std::vector<std::string>& results) {
    CandidatesJob job;
    job.model = L.o.model;
    job.engine = L.o.engine;
    job.schemes = path_in(L.R, "schemes/" + m);
    job.mode = m;
    job.ks = L.o.ks;
    job.calib.npy = L.calib_npy;
    job.calib.imgsz = L.o.imgsz;
    job.high_precision = L.o.high_precision;
    job.out_dir = path_in(L.R, "candidates");
    job.results_dir = path_in(L.R, "results");
    job.eval = L.eval_job("", "");
    Argv argv = cat({"candidates", L.o.model, "--schemes", job.schemes, "--mode", m, "--ks"}, L.ks);
    argv = cat(argv, {"--calib", L.calib_npy, "--high-precision", L.o.high_precision, "--out-dir",
                      job.out_dir, "--results-dir", job.results_dir});
    if (!L.o.calibration_method.empty()) {
        argv.insert(argv.end(), {"--calibration-method", L.o.calibration_method});
        job.method.method = L.o.calibration_method;
    }
    Step s{"candidates-" + m, m + " candidates: build and evaluate", {}, {}, {}, {}, {}, {}, {}, {}, false};
    s.commands = {cat(argv, L.eval_data)};
    s.inputs = cat({L.o.model, L.calib_npy, job.schemes}, L.data_inputs);
    for (int k : L.o.ks) {
        s.outputs.push_back(path_in(L.R, fmt::format("candidates/{}-{}-k{}.onnx", L.stem, m, k)));
        const std::string res = path_in(L.R, fmt::format("results/{}_k{}.json", m, k));
        s.outputs.push_back(res);
        results.push_back(res);
    }
    s.run = job_fn(job);
    set_shard_fns(s, job);
    return s;
}

// Rounds of the compare step's interleaved timing: 20 whole runs of each model (the median's
// 95% interval is then the 6th to 15th of the sorted times).
constexpr int kCompareRounds = 20;

// Compares whatever results and reports exist (a step that could not run leaves gaps).
Step compare_step(const Layout& L, const std::vector<std::string>& results,
                  const std::vector<std::string>& reports) {
    Step s{"compare", "comparison table and report", {}, {}, {}, {}, {}, {}, {}, {}, false};
    s.after_all = true;
    const std::string md = path_in(L.R, "summary.md"), html = path_in(L.R, "report.html");
    s.outputs = {md, html};
    const int threads = L.o.threads;
    s.prepare = [results, reports, md, html, threads](Step& st) {
        CompareJob job;
        job.out = md;
        job.html = html;
        // The evaluations ran one after another, minutes apart: the variants are timed again,
        // interleaved, so that the recommendation compares like with like.
        job.interleave_rounds = kCompareRounds;
        job.threads = threads;
        st.inputs.clear();
        for (const std::string& r : results) {
            if (!fs::exists(r)) continue;
            job.results.push_back(r);
            st.inputs.push_back(r);
        }
        for (const std::string& r : reports) {
            if (!fs::exists(r)) continue;
            job.sensitivity.push_back(r);
            st.inputs.push_back(r);
        }
        Argv argv = cat({"compare"}, job.results);
        argv.insert(argv.end(), {"--out", md, "--html", html, "--interleave-rounds",
                                 std::to_string(kCompareRounds), "--threads",
                                 std::to_string(threads)});
        if (!job.sensitivity.empty()) argv = cat(cat(argv, {"--sensitivity"}), job.sensitivity);
        st.commands = {argv};
        st.run = job_fn(job);
    };
    return s;
}

}  // namespace

Result<RunPlan> plan_run(RunOptions o) {
    RunPlan plan;
    LOWBIT_ASSIGN(o.model, resolve_model_path(o.model));
    LOWBIT_ASSIGN(Model model, load_model(o.model));
    for (const std::string& m : o.modes) {
        quant::QuantizeOptions check;
        LOWBIT_TRY(apply_variant_mode(m, check));
    }
    if (o.modes.empty()) return invalid("--modes needs at least one of fp8, int8, w4a16, w4a8");
    std::vector<std::string> modes;  // each once, in the order given
    for (const std::string& m : o.modes) {
        if (std::find(modes.begin(), modes.end(), m) == modes.end()) modes.push_back(m);
    }
    o.modes = modes;
    LOWBIT_TRY(parse_high_precision(o.high_precision).status());
    if (!o.calibration_method.empty()) {
        LOWBIT_TRY(calib::parse_calib_method(o.calibration_method).status());
    }
    plan.method = !o.calibration_method.empty()
                      ? o.calibration_method
                      : calib::calib_method_name(quant::QuantizeOptions{}.method);
    EvalJob data;
    data.data_root = o.data_root;
    data.ann = o.ann;
    data.images = o.images;
    LOWBIT_TRY(resolve_eval_data(data));
    o.ann = data.ann;
    o.images = data.images;
    if (o.calib_list.empty()) {
        const std::string assets = assets_dir();
        o.calib_list = (fs::path(assets) / "calib" / "calib100.txt").string();
        if (assets.empty() || !fs::is_regular_file(o.calib_list)) {
            return invalid(
                "no --calib-list given and the bundled list "
                "(assets/calib/calib100.txt) was not found{}",
                assets_not_found_note());
        }
    }
    LOWBIT_ASSIGN(plan.calib_images, read_image_list(o.calib_list));
    o.imgsz = static_cast<int>(image_size_for(model, o.imgsz));
    if (o.root.empty()) o.root = (fs::path("runs") / local_timestamp()).string();
    if (o.scheduler != "local" && o.scheduler != "slurm" && o.scheduler != "print") {
        return invalid("--scheduler '{}': expected local, slurm or print", o.scheduler);
    }
    if (o.shards < 1) return invalid("--shards {}: give at least 1", o.shards);
    if (o.scheduler != "local") {
        // The jobs run elsewhere, from another working folder.
        for (std::string* p : {&o.root, &o.model, &o.ann, &o.images, &o.calib_list}) {
            *p = fs::absolute(*p).lexically_normal().string();
        }
    }
    if (o.shards > 1 && o.scheduler == "local") {
        return invalid("--shards {} needs --scheduler slurm or print", o.shards);
    }
    if (o.slurm.poll_seconds <= 0) return invalid("--poll {}: must be > 0", o.slurm.poll_seconds);
    if ((!o.step_shard.empty() || o.step_merge) && o.step.empty()) {
        return invalid("--step-shard and --step-merge need --step NAME");
    }
    if (!o.step_shard.empty() && o.step_merge) {
        return invalid("--step-shard and --step-merge exclude each other");
    }
    plan.options = std::move(o);
    return plan;
}

std::vector<std::string> run_command_line(const RunPlan& plan) {
    const RunOptions& o = plan.options;
    Argv a = {"run",        "--root",       o.root,       "--model",  o.model, "--ann", o.ann,
              "--images",   o.images,       "--calib-list", o.calib_list, "--imgsz",
              std::to_string(o.imgsz), "--modes"};
    a = cat(a, o.modes);
    a.push_back("--ks");
    for (int k : o.ks) a.push_back(std::to_string(k));
    a = cat(a, {"--threads", std::to_string(o.threads), "--sensitivity-images",
                std::to_string(o.sensitivity_images), "--max-images",
                std::to_string(o.max_images), "--high-precision", o.high_precision});
    if (!o.calibration_method.empty()) a = cat(a, {"--calibration-method", o.calibration_method});
    return a;
}

std::string step_shard_dir(const std::string& root, const std::string& step) {
    return path_in(root, "shards/" + step);
}

std::vector<Step> build_run_steps(const RunPlan& plan) {
    const Layout L(plan);
    const RunOptions& o = plan.options;
    std::vector<Step> steps;
    steps.push_back(smoke_step(L));
    steps.push_back(eval_step(L, "baseline", "FP32 COCO evaluation", o.model,
                              path_in(L.R, "baseline-coco/metrics.json"),
                              {"baseline", "fp32", std::nullopt, 0, "", ""}));
    steps.push_back(calib_step(L));
    const std::string int8_onnx = path_in(L.R, "onnx/" + L.stem + "-int8-qdq.onnx");
    steps.push_back(int8_step(L, int8_onnx));
    steps.push_back(eval_step(L, "int8-eval", "INT8 COCO evaluation", int8_onnx,
                              path_in(L.R, "int8-coco/metrics.json"),
                              {"int8", "int8", std::nullopt, 0, plan.method, ""}));
    const std::string head_txt = path_in(L.R, "nodes_to_exclude_head.txt");
    steps.push_back(head_exclude_step(L, head_txt));
    const std::string head_onnx = path_in(L.R, "onnx/" + L.stem + "-int8-head-qdq.onnx");
    steps.push_back(int8_head_step(L, head_txt, head_onnx));
    steps.push_back(int8_head_eval_step(L, head_txt, head_onnx));
    std::vector<std::string> reports;
    for (const std::string& m : o.modes) {
        steps.push_back(sensitivity_step(L, m));
        reports.push_back(steps.back().outputs.front());
    }
    for (const std::string& m : o.modes) steps.push_back(schemes_step(L, m));
    std::vector<std::string> results = {path_in(L.R, "results/baseline.json"),
                                        path_in(L.R, "results/int8.json"),
                                        path_in(L.R, "results/int8_head.json")};
    for (const std::string& m : o.modes) steps.push_back(candidates_step(L, m, results));
    steps.push_back(compare_step(L, results, reports));
    return steps;
}

namespace {

nlohmann::ordered_json outcome_json(const StepOutcome& s) {
    nlohmann::ordered_json t = {{"step", s.name},
                                {"title", s.title},
                                {"status", step_status_name(s.status)},
                                {"seconds", s.seconds}};
    if (s.recorded_seconds) t["recorded_seconds"] = *s.recorded_seconds;
    return t;
}

// The comparison table (compare's log), the steps' table and the run root, to `out`.
void print_summary(const std::string& R, const std::vector<StepOutcome>& outcomes, double total,
                   std::FILE* out) {
    auto table = read_file(path_in(R, "logs/compare.log"));
    if (table) std::fputs(table->c_str(), out);
    std::fprintf(out, "\n%-22s %8s %10s\n", "step", "status", "seconds");
    for (const StepOutcome& s : outcomes) {
        std::fprintf(out, "%-22s %8s %10.1f\n", s.name.c_str(), step_status_name(s.status),
                     s.seconds);
    }
    std::fprintf(out, "%-22s %8s %10.1f\n", "total", "", total);
    std::fprintf(out, "run root: %s\n", R.c_str());
    std::fflush(out);
}

// One step as a scheduler's job: whole (with the resume check and record), one shard of it, or
// its merge (recorded as the step's run).
Status run_step_job(const RunPlan& plan, std::vector<Step>& steps, RunStepsOptions ro,
                    Fingerprinter& fp, std::FILE* out) {
    const RunOptions& o = plan.options;
    Step* step = nullptr;
    for (Step& s : steps) {
        if (s.name == o.step) step = &s;
    }
    if (!step) return invalid("--step '{}': no such step", o.step);
    ro.only = {o.step};
    const std::string dir = step_shard_dir(o.root, o.step);
    if (!o.step_shard.empty()) {
        if (!step->run_shard) return invalid("step {} cannot be split into shards", o.step);
        ShardOptions shard;
        shard.dir = dir;
        LOWBIT_TRY(parse_shard_spec(o.step_shard, shard));
        if (step->prepare) step->prepare(*step);
        std::error_code ec;
        for (const std::string& in : step->inputs) {
            if (!fs::exists(in, ec)) return io_error("step {}: input {} is missing", o.step, in);
        }
        for (const std::string& output : step->outputs) {
            fs::create_directories(fs::path(output).parent_path(), ec);
        }
        const std::string log_path =
            path_in(o.root, fmt::format("logs/{}.shard-{}-of-{}.log", o.step, shard.index,
                                        shard.count));
        std::FILE* log = std::fopen(log_path.c_str(), "w");
        if (!log) return io_error("cannot open {} for writing", log_path);
        StepContext ctx;
        ctx.log = log;
        std::fprintf(stderr, "lowbit run: step %s, shard %d/%d\n", o.step.c_str(), shard.index,
                     shard.count);
        Status st = step->run_shard(ctx, shard);
        std::fclose(log);
        if (!st) return st.with_context(fmt::format("step {} shard {}/{}", o.step, shard.index,
                                                    shard.count));
        return Status::ok();
    }
    if (o.step_merge) {
        if (!step->run_merged) return invalid("step {} has no shards to merge", o.step);
        // The step's prepare may set its functions: wrap after it.
        auto prepare = step->prepare;
        step->prepare = [prepare, dir](Step& s) {
            if (prepare) prepare(s);
            auto merged = s.run_merged;
            s.run = [merged, dir](StepContext& ctx) { return merged(ctx, dir); };
        };
        ro.forced = {o.step};
    }
    LOWBIT_ASSIGN(std::vector<StepOutcome> outcomes, run_steps(steps, o.root, ro, fp));
    for (const StepOutcome& s : outcomes) {
        if (s.status == StepStatus::Unavailable) {
            return error(StatusCode::Internal, "step {} could not run: {}", s.name, s.why);
        }
    }
    return Status::ok();
}

}  // namespace

Status check_run_paths(const RunPlan& plan, const std::vector<Step>& steps) {
    const RunOptions& o = plan.options;
    PathRoles roles;
    roles.input("--model", o.model);
    roles.input("--ann", o.ann);
    roles.input("--images", o.images);
    roles.input("--calib-list", o.calib_list);
    for (const std::string& img : plan.calib_images) roles.input("--calib-list image", img);
    for (const Step& s : steps) {
        const std::string flag = "--root (step " + s.name + ")";
        for (const std::string& out : s.outputs) roles.output(flag, out);
        roles.output(flag, path_in(o.root, "logs/" + s.name + ".log"));
    }
    // Folders that steps write into (schemes/<mode>) hold these files.
    for (const std::string& m : o.modes) {
        for (int k : o.ks) {
            for (const std::string& f :
                 {fmt::format("nodes_to_exclude_k{}.txt", k), fmt::format("scheme_k{}.json", k)}) {
                roles.output("--root (step schemes-" + m + ")",
                             path_in(o.root, "schemes/" + m + "/" + f));
            }
        }
        roles.output("--root (step schemes-" + m + ")",
                     path_in(o.root, "schemes/" + m + "/candidates.md"));
    }
    roles.output("--root", path_in(o.root, "run-times.json"));
    return check_path_roles(roles);
}

Status run_workflow(const RunOptions& options, std::FILE* out) {
    const auto t_start = Clock::now();
    LOWBIT_ASSIGN(const RunPlan plan, plan_run(options));
    const std::string& R = plan.options.root;
    std::vector<Step> steps = build_run_steps(plan);
    LOWBIT_TRY(check_run_paths(plan, steps));
    std::error_code ec;
    fs::create_directories(path_in(R, "logs"), ec);
    if (ec) return io_error("cannot create {}: {}", R, ec.message());

    RunStepsOptions ro;
    ro.force = options.force;
    ro.forced = {options.force_steps.begin(), options.force_steps.end()};
    LOWBIT_TRY(check_step_names(steps, ro.forced));

    Fingerprinter fp;
    // The program is an input of every step: another build may compute other results.
    auto self = fp.path_hash("/proc/self/exe");
    ro.program_hash = self ? *self : std::string("unknown");
    if (!plan.options.step.empty()) return run_step_job(plan, steps, ro, fp, out);

    std::fprintf(stderr, "lowbit run: %zu steps into %s%s\n", steps.size(), R.c_str(),
                 plan.options.scheduler == "local"
                     ? ""
                     : fmt::format(" (scheduler {}, {} shards)", plan.options.scheduler,
                                   plan.options.shards)
                           .c_str());
    std::vector<StepOutcome> outcomes;
    if (plan.options.scheduler == "local") {
        LOWBIT_ASSIGN(outcomes, run_steps(steps, R, ro, fp));
    } else {
        LOWBIT_ASSIGN(outcomes, run_scheduled(plan, steps, ro, fp, stderr));
        if (plan.options.scheduler == "print") return Status::ok();
    }

    const double total = std::chrono::duration<double>(Clock::now() - t_start).count();
    nlohmann::ordered_json times = nlohmann::ordered_json::array();
    std::string incomplete;
    for (const StepOutcome& s : outcomes) {
        times.push_back(outcome_json(s));
        if (s.status == StepStatus::Unavailable) incomplete += "\n  " + s.name + " (" + s.why + ")";
    }
    nlohmann::ordered_json rt = {{"root", R}, {"total_seconds", total}, {"steps", times}};
    LOWBIT_TRY(write_file_atomic(path_in(R, "run-times.json"), rt.dump(2) + "\n"));
    print_summary(R, outcomes, total, out);
    if (!incomplete.empty()) {
        return error(StatusCode::Internal, "the run is incomplete; skipped:{}", incomplete);
    }
    return Status::ok();
}

}  // namespace lowbit::pipeline
