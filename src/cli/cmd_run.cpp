// lowbit run: the whole workflow of research/seed-spec.md (§2, §11, §12) into one run root:
//
//   baseline-onnx/ baseline-coco/ calib/ onnx/ int8-coco/ int8-head-coco/ sensitivity/<mode>/
//   schemes/<mode>/ candidates/ results/ summary.md report.html nodes_to_exclude_head.txt
//   logs/<step>.log run-times.json .lowbit-run/<step>.json
//
// Every step is a lowbit command line, run in this process through the same CLI as the
// standalone command (so a step is exactly what a user would type; its stdout goes to
// logs/<step>.log). Steps whose inputs and outputs are unchanged since they last finished are
// skipped (pipeline/run_manifest.h), so a killed run resumes where it stopped.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <functional>
#include <set>

#include "calib/calibrators.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/pipeline_steps.h"
#include "core/fs.h"
#include "data/image_list.h"
#include "onnx/model_io.h"
#include "pipeline/run_manifest.h"
#include "quant/quantize_model.h"

namespace lowbit::cli {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct RunCliOptions {
    std::string root;
    std::string model;
    std::string data_root;
    std::string ann;
    std::string images;
    std::string calib_list;
    int imgsz = 0;
    std::vector<std::string> modes = {"fp8", "int8"};
    std::vector<int> ks = {0, 5, 10, 20};
    int threads = 0;
    int sensitivity_images = 16;
    int max_images = 0;
    std::string calibration_method;  // empty: quantize's default
    std::string high_precision = "fp32";
    bool force = false;
    std::vector<std::string> force_steps;
};

// A results file written from an eval metrics.json and the variant's description.
struct ResultsNote {
    std::string metrics;
    std::string out;
    std::string model;
    VariantInfo variant;

    std::vector<std::string> argv() const {
        return {"(write-results)",
                metrics,
                out,
                model,
                variant.name,
                variant.mode,
                std::to_string(variant.excluded_nodes),
                variant.calibration_method,
                variant.scheme};
    }
};

struct Step {
    std::string name;
    std::string title;
    std::vector<std::vector<std::string>> commands;  // lowbit argv, without "lowbit"
    std::vector<ResultsNote> results;                // written after the commands
    std::vector<std::string> inputs;
    std::vector<std::string> outputs;
    // Called just before the step is checked (for steps whose inputs depend on earlier ones).
    std::function<void(Step&)> prepare;

    pipeline::StepSpec spec() const {
        pipeline::StepSpec s;
        s.name = name;
        s.argv = commands;
        for (const ResultsNote& r : results) s.argv.push_back(r.argv());
        s.inputs = inputs;
        s.outputs = outputs;
        return s;
    }
};

// Runs `lowbit ARGS...` in this process: a fresh CLI app per call, as main() builds it.
int run_lowbit(const std::vector<std::string>& args) {
    CLI::App app{"lowbit"};
    app.require_subcommand(1);
    CommandFn run;
    add_all_commands(app, run);
    std::vector<std::string> storage = {"lowbit"};
    storage.insert(storage.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& s : storage) argv.push_back(s.data());
    try {
        app.parse(static_cast<int>(argv.size()), argv.data());
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;
    }
    return run ? run() : 2;
}

bool has_command(const std::string& name) {
    CLI::App app{"lowbit"};
    CommandFn run;
    add_all_commands(app, run);
    try {
        app.get_subcommand(name);
        return true;
    } catch (const CLI::OptionNotFound&) {
        return false;
    }
}

// Sends stdout to a file while alive (the step's log); stderr stays with the user.
class StdoutToFile {
public:
    explicit StdoutToFile(const std::string& path) {
        std::fflush(stdout);
        const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) return;
        saved_ = ::dup(STDOUT_FILENO);
        ::dup2(fd, STDOUT_FILENO);
        ::close(fd);
    }
    ~StdoutToFile() {
        std::fflush(stdout);
        if (saved_ < 0) return;
        ::dup2(saved_, STDOUT_FILENO);
        ::close(saved_);
    }
    StdoutToFile(const StdoutToFile&) = delete;
    StdoutToFile& operator=(const StdoutToFile&) = delete;

private:
    int saved_ = -1;
};

std::string join(const std::vector<std::string>& v) {
    std::string s;
    for (const std::string& a : v) {
        if (!s.empty()) s += ' ';
        const bool quote = a.empty() || a.find_first_of(" \t'\"$") != std::string::npos;
        s += quote ? "'" + a + "'" : a;
    }
    return s;
}

Status write_results(const ResultsNote& r) {
    LOWBIT_ASSIGN(std::string text, read_file(r.metrics));
    nlohmann::ordered_json metrics = nlohmann::ordered_json::parse(text, nullptr, false);
    if (metrics.is_discarded()) return invalid("{} is not valid JSON", r.metrics);
    LOWBIT_ASSIGN(Model model, load_model(r.model));
    return write_results_json(r.out, std::move(metrics),
                              variant_json(r.variant, model.graph, r.model));
}

std::string local_timestamp() {
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    localtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d_%H-%M-%S", &tm);
    return buf;
}

std::string path_in(const std::string& root, const std::string& rel) {
    return (fs::path(root) / rel).string();
}

int run_run(RunCliOptions o) {
    const char* cmd = "run";
    const auto t_start = Clock::now();
    auto model_path = resolve_model_path(o.model);
    if (!model_path) return report(cmd, model_path.status());
    const std::string model = *model_path;
    auto loaded = load_model(model);
    if (!loaded) return report(cmd, loaded.status());

    for (const std::string& m : o.modes) {
        if (auto mode = parse_quant_mode(m); !mode) return report(cmd, mode.status());
    }
    if (o.modes.empty()) return report(cmd, invalid("--modes needs at least one of fp8, int8"));
    std::vector<std::string> modes;  // each once, in the order given
    for (const std::string& m : o.modes) {
        if (std::find(modes.begin(), modes.end(), m) == modes.end()) modes.push_back(m);
    }
    o.modes = modes;
    if (auto hp = parse_high_precision(o.high_precision); !hp) return report(cmd, hp.status());
    if (!o.calibration_method.empty()) {
        if (auto m = calib::parse_calib_method(o.calibration_method); !m) {
            return report(cmd, m.status());
        }
    }
    const std::string method = !o.calibration_method.empty()
                                   ? o.calibration_method
                                   : calib::calib_method_name(quant::QuantizeOptions{}.method);
    EvalCliOptions data;
    data.data_root = o.data_root;
    data.ann = o.ann;
    data.images = o.images;
    if (Status st = resolve_eval_data(data); !st) return report(cmd, st);
    if (o.calib_list.empty()) {
        const std::string assets = assets_dir();
        o.calib_list = (fs::path(assets) / "calib" / "calib100.txt").string();
        if (assets.empty() || !fs::is_regular_file(o.calib_list)) {
            return report(cmd, invalid("no --calib-list given and the bundled list "
                                       "(assets/calib/calib100.txt) was not found"));
        }
    }
    auto calib_images = read_image_list(o.calib_list);
    if (!calib_images) return report(cmd, calib_images.status());
    o.imgsz = static_cast<int>(image_size_for(*loaded, o.imgsz));
    if (o.root.empty()) o.root = (fs::path("runs") / local_timestamp()).string();
    const std::string R = o.root;
    std::error_code ec;
    fs::create_directories(path_in(R, "logs"), ec);
    if (ec) return report(cmd, io_error("cannot create {}: {}", R, ec.message()));

    const std::string stem = fs::path(model).stem().string();
    const std::string threads = std::to_string(o.threads);
    const std::string max_images = std::to_string(o.max_images);
    const std::string calib_npy = path_in(R, "calib/calib.npy");
    const std::vector<std::string> eval_data = {
        "--ann",        data.ann,   "--images", data.images,
        "--max-images", max_images, "--imgsz",  std::to_string(o.imgsz),
        "--threads",    threads};
    std::vector<std::string> quant_opts = {"--calib",        calib_npy,   "--high-precision",
                                           o.high_precision, "--threads", threads};
    if (!o.calibration_method.empty()) {
        quant_opts.insert(quant_opts.end(), {"--calibration-method", o.calibration_method});
    }
    auto cat = [](std::vector<std::string> a, const std::vector<std::string>& b) {
        a.insert(a.end(), b.begin(), b.end());
        return a;
    };
    const std::vector<std::string> data_inputs = {data.ann, data.images};
    std::vector<std::string> ks;
    for (int k : o.ks) ks.push_back(std::to_string(k));

    std::vector<Step> steps;
    steps.push_back({"smoke",
                     "random-input smoke test",
                     {{"smoke", model, "--out", path_in(R, "baseline-onnx"), "--threads", threads}},
                     {},
                     {model},
                     {path_in(R, "baseline-onnx/summary.json")},
                     {}});
    auto eval_step = [&](const std::string& name, const std::string& title, const std::string& onnx,
                         const std::string& metrics, const VariantInfo& v) {
        Step s{name, title, {cat({"eval", onnx, "--out", metrics}, eval_data)}, {}, {}, {}, {}};
        const std::string results = path_in(R, "results/" + v.name + ".json");
        s.results.push_back({metrics, results, onnx, v});
        s.inputs = cat({onnx}, data_inputs);
        s.outputs = {metrics, results};
        return s;
    };
    steps.push_back(eval_step("baseline", "FP32 COCO evaluation", model,
                              path_in(R, "baseline-coco/metrics.json"),
                              {"baseline", "fp32", std::nullopt, 0, "", ""}));
    steps.push_back(
        {"calib",
         fmt::format("calibration tensor ({} images at {})", calib_images->size(), o.imgsz),
         {{"calib", "--list", o.calib_list, "--imgsz", std::to_string(o.imgsz), "--out", calib_npy,
           "--threads", threads}},
         {},
         cat({o.calib_list}, *calib_images),
         {calib_npy},
         {}});
    const std::string int8_onnx = path_in(R, "onnx/" + stem + "-int8-qdq.onnx");
    steps.push_back({"int8",
                     "INT8 quantization",
                     {cat({"quantize", model, "--mode", "int8", "--out", int8_onnx}, quant_opts)},
                     {},
                     {model, calib_npy},
                     {int8_onnx},
                     {}});
    steps.push_back(eval_step("int8-eval", "INT8 COCO evaluation", int8_onnx,
                              path_in(R, "int8-coco/metrics.json"),
                              {"int8", "int8", std::nullopt, 0, method, ""}));
    const std::string head_txt = path_in(R, "nodes_to_exclude_head.txt");
    steps.push_back({"head-exclude",
                     "detection-head exclusion list",
                     {{"head-exclude", model, "--out", head_txt}},
                     {},
                     {model},
                     {head_txt},
                     {}});
    const std::string head_onnx = path_in(R, "onnx/" + stem + "-int8-head-qdq.onnx");
    steps.push_back({"int8-head",
                     "INT8 quantization, head kept in high precision",
                     {cat({"quantize", model, "--mode", "int8", "--exclude-nodes-file", head_txt,
                           "--out", head_onnx},
                          quant_opts)},
                     {},
                     {model, calib_npy, head_txt},
                     {head_onnx},
                     {}});
    {
        Step s = eval_step("int8-head-eval", "INT8 (head excluded) COCO evaluation", head_onnx,
                           path_in(R, "int8-head-coco/metrics.json"),
                           {"int8_head", "int8", std::nullopt, 0, method, head_txt});
        // The exclusion count is known once head-exclude has run.
        s.prepare = [head_txt](Step& st) {
            auto names = read_node_list(head_txt);
            st.results[0].variant.excluded_nodes = names ? static_cast<int64_t>(names->size()) : 0;
        };
        steps.push_back(std::move(s));
    }
    std::vector<std::string> reports;
    for (const std::string& m : o.modes) {
        const std::string report_json = path_in(R, "sensitivity/" + m + "/report.json");
        reports.push_back(report_json);
        std::vector<std::string> argv = {
            "sensitivity", model,        "--mode",   m,
            "--calib",     calib_npy,    "--images", std::to_string(o.sensitivity_images),
            "--metric",    "output-mse", "--out",    report_json,
            "--threads",   threads};
        if (!o.calibration_method.empty()) {
            argv.insert(argv.end(), {"--calibration-method", o.calibration_method});
        }
        steps.push_back(
            {"sensitivity-" + m,
             fmt::format("{} per-node sensitivity ({} images)", m, o.sensitivity_images),
             {argv},
             {},
             {model, calib_npy},
             {report_json, path_in(R, "sensitivity/" + m + "/report.md")},
             {}});
    }
    for (const std::string& m : o.modes) {
        const std::string dir = path_in(R, "schemes/" + m);
        steps.push_back({"schemes-" + m,
                         m + " top-K exclusion schemes",
                         {cat(cat({"schemes", "--report",
                                   path_in(R, "sensitivity/" + m + "/report.json"), "--ks"},
                                  ks),
                              {"--out-dir", dir, "--model", model})},
                         {},
                         {path_in(R, "sensitivity/" + m + "/report.json"), model},
                         {dir},
                         {}});
    }
    std::vector<std::string> candidate_results;
    for (const std::string& m : o.modes) {
        Step s{"candidates-" + m, m + " candidates: build and evaluate", {}, {}, {}, {}, {}};
        std::vector<std::string> argv = {
            "candidates", model, "--schemes", path_in(R, "schemes/" + m), "--mode", m, "--ks"};
        argv = cat(argv, ks);
        argv = cat(argv, {"--calib", calib_npy, "--high-precision", o.high_precision, "--out-dir",
                          path_in(R, "candidates"), "--results-dir", path_in(R, "results")});
        if (!o.calibration_method.empty()) {
            argv.insert(argv.end(), {"--calibration-method", o.calibration_method});
        }
        s.commands = {cat(argv, eval_data)};
        s.inputs = cat({model, calib_npy, path_in(R, "schemes/" + m)}, data_inputs);
        for (int k : o.ks) {
            s.outputs.push_back(path_in(R, fmt::format("candidates/{}-{}-k{}.onnx", stem, m, k)));
            const std::string res = path_in(R, fmt::format("results/{}_k{}.json", m, k));
            s.outputs.push_back(res);
            candidate_results.push_back(res);
        }
        steps.push_back(std::move(s));
    }
    {
        Step s{"compare", "comparison table and report", {}, {}, {}, {}, {}};
        std::vector<std::string> results = {path_in(R, "results/baseline.json"),
                                            path_in(R, "results/int8.json"),
                                            path_in(R, "results/int8_head.json")};
        results = cat(results, candidate_results);
        const std::string md = path_in(R, "summary.md"), html = path_in(R, "report.html");
        // Compares whatever results exist (a step missing from this build leaves gaps).
        s.prepare = [results, reports, md, html](Step& st) {
            std::vector<std::string> argv = {"compare"};
            st.inputs.clear();
            for (const std::string& r : results) {
                if (!fs::exists(r)) continue;
                argv.push_back(r);
                st.inputs.push_back(r);
            }
            argv.insert(argv.end(), {"--out", md, "--html", html});
            std::vector<std::string> sens;
            for (const std::string& r : reports) {
                if (!fs::exists(r)) continue;
                sens.push_back(r);
                st.inputs.push_back(r);
            }
            if (!sens.empty()) {
                argv.push_back("--sensitivity");
                argv.insert(argv.end(), sens.begin(), sens.end());
            }
            st.commands = {argv};
        };
        s.outputs = {md, html};
        steps.push_back(std::move(s));
    }

    const std::set<std::string> forced(o.force_steps.begin(), o.force_steps.end());
    for (const std::string& f : forced) {
        bool known = false;
        for (const Step& s : steps) known = known || s.name == f;
        if (!known) return report(cmd, invalid("--force-step '{}': no such step", f));
    }

    std::fprintf(stderr, "lowbit run: %zu steps into %s\n", steps.size(), R.c_str());
    pipeline::Fingerprinter fp;
    // The program is an input of every step: another build may compute other results.
    auto self = fp.path_hash("/proc/self/exe");
    const std::string self_hash = self ? *self : std::string("unknown");
    nlohmann::ordered_json times = nlohmann::ordered_json::array();
    std::vector<std::string> incomplete;
    const size_t n = steps.size();
    for (size_t i = 0; i < n; ++i) {
        Step& s = steps[i];
        if (s.prepare) s.prepare(s);
        const std::string tag = fmt::format("[{}/{}] {}", i + 1, n, s.name);
        nlohmann::ordered_json t = {{"step", s.name}, {"title", s.title}};
        auto skip = [&](const std::string& why) {
            std::fprintf(stderr, "%s: skipped (%s)\n", tag.c_str(), why.c_str());
            incomplete.push_back(fmt::format("{} ({})", s.name, why));
            t["status"] = "unavailable";
            t["seconds"] = 0.0;
            times.push_back(t);
        };
        std::string missing_cmd;
        for (const auto& c : s.commands) {
            if (!has_command(c[0])) missing_cmd = c[0];
        }
        if (!missing_cmd.empty()) {
            skip(fmt::format("this build has no `lowbit {}`", missing_cmd));
            continue;
        }
        std::string missing_input;
        for (const std::string& in : s.inputs) {
            if (!fs::exists(in, ec)) missing_input = in;
        }
        if (!missing_input.empty()) {
            skip("input " + missing_input + " is missing");
            continue;
        }
        pipeline::StepSpec spec = s.spec();
        spec.argv.push_back({"(lowbit)", self_hash});
        if (!o.force && !forced.count(s.name)) {
            auto state = pipeline::check_step(fp, R, spec);
            if (!state) return report(cmd, state.status().with_context(s.name));
            if (*state == pipeline::StepState::UpToDate) {
                const nlohmann::json m = pipeline::read_manifest(R, s.name);
                std::fprintf(stderr, "%s: up to date, skipped\n", tag.c_str());
                t["status"] = "skipped";
                t["seconds"] = 0.0;
                t["recorded_seconds"] = m.value("seconds", 0.0);
                times.push_back(t);
                continue;
            }
            std::fprintf(stderr, "%s: %s (%s)\n", tag.c_str(), s.title.c_str(),
                         pipeline::step_state_name(*state));
        } else {
            std::fprintf(stderr, "%s: %s (forced)\n", tag.c_str(), s.title.c_str());
        }
        if (Status st = pipeline::clear_step(R, s.name); !st) return report(cmd, st);
        for (const std::string& out : s.outputs) {
            fs::create_directories(fs::path(out).parent_path(), ec);  // not every command does
        }
        const auto t0 = Clock::now();
        const std::string log = path_in(R, "logs/" + s.name + ".log");
        for (const auto& c : s.commands) {
            std::fprintf(stderr, "  lowbit %s\n", join(c).c_str());
            int rc = 0;
            {
                StdoutToFile redirect(log);
                rc = run_lowbit(c);
            }
            if (rc != 0) {
                std::fprintf(stderr,
                             "lowbit run: error: step %s failed (exit %d); its output is "
                             "in %s\n",
                             s.name.c_str(), rc, log.c_str());
                return 1;
            }
        }
        for (const ResultsNote& r : s.results) {
            if (Status st = write_results(r); !st) return report(cmd, st.with_context(s.name));
        }
        const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
        if (Status st = pipeline::record_step(fp, R, spec, seconds); !st) {
            return report(cmd, st);
        }
        std::fprintf(stderr, "%s: done in %.1f s\n", tag.c_str(), seconds);
        t["status"] = "ran";
        t["seconds"] = seconds;
        times.push_back(t);
    }

    const double total = std::chrono::duration<double>(Clock::now() - t_start).count();
    nlohmann::ordered_json rt = {{"root", R}, {"total_seconds", total}, {"steps", times}};
    if (Status st = write_file_atomic(path_in(R, "run-times.json"), rt.dump(2) + "\n"); !st) {
        return report(cmd, st);
    }
    auto table = read_file(path_in(R, "logs/compare.log"));
    if (table) std::fputs(table->c_str(), stdout);
    std::printf("\n%-22s %8s %10s\n", "step", "status", "seconds");
    for (const auto& t : times) {
        std::printf("%-22s %8s %10.1f\n", t["step"].get<std::string>().c_str(),
                    t["status"].get<std::string>().c_str(), t["seconds"].get<double>());
    }
    std::printf("%-22s %8s %10.1f\n", "total", "", total);
    std::printf("run root: %s\n", R.c_str());
    std::fflush(stdout);
    if (!incomplete.empty()) {
        std::string list;
        for (const std::string& s : incomplete) list += "\n  " + s;
        std::fprintf(stderr, "lowbit run: error: the run is incomplete; skipped:%s\n",
                     list.c_str());
        return 1;
    }
    return 0;
}

}  // namespace

void add_run_command(CLI::App& app, CommandFn& run) {
    auto o = std::make_shared<RunCliOptions>();
    CLI::App* sub = app.add_subcommand(
        "run",
        "The whole workflow into one run root: smoke test, FP32 eval, calibration tensor, INT8 "
        "+ eval, INT8 with the head excluded + eval, per-node sensitivity, top-K schemes, "
        "candidates + evals, comparison (summary.md, report.html). With no arguments: the "
        "bundled model and data. A killed run resumes where it stopped when run again with "
        "the same --root.");
    sub->add_option("--root", o->root, "Run root (default: runs/<YYYY-MM-DD_HH-MM-SS>)");
    sub->add_option("--model", o->model, "Float ONNX model (default: the bundled model)");
    sub->add_option("--data", o->data_root,
                    "COCO folder: annotations/instances_val2017.json + val2017/ (default: the "
                    "bundled val set)");
    sub->add_option("--ann", o->ann, "Annotation file (overrides --data)");
    sub->add_option("--images", o->images, "Image folder (overrides --data)");
    sub->add_option("--calib-list", o->calib_list,
                    "Calibration image list (default: the bundled assets/calib/calib100.txt)");
    sub->add_option("--imgsz", o->imgsz,
                    "Letterbox size for calibration and evaluation (default: the model's)");
    sub->add_option("--modes", o->modes, "Modes of the sensitivity/candidate steps")
        ->capture_default_str();
    sub->add_option("--ks", o->ks, "Values of K for the schemes")->capture_default_str();
    sub->add_option("--threads", o->threads, "Threads (default: all cores)")
        ->check(CLI::NonNegativeNumber);
    sub->add_option("--sensitivity-images", o->sensitivity_images,
                    "Calibration images the sensitivity sweep measures on")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    sub->add_option("--max-images", o->max_images, "Images per evaluation (0: all)")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    sub->add_option("--calibration-method", o->calibration_method,
                    "Calibration method of every quantization (default: quantize's)");
    sub->add_option("--high-precision", o->high_precision,
                    "Precision of the candidates' non-quantized part: fp32 or fp16")
        ->capture_default_str();
    sub->add_flag("--force", o->force, "Redo every step");
    sub->add_option("--force-step", o->force_steps, "Redo this step (repeatable)");
    sub->callback([o, &run] { run = [o] { return run_run(*o); }; });
}

}  // namespace lowbit::cli
