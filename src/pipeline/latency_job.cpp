// `lowbit latency M1 M2 ...`: which of these models is faster on this machine, measured so that
// the machine's slow phases hit all of them alike. Every model is loaded and planned once, then
// each round times every model once (node_latency.h measure_interleaved, the order rotating:
// A B C, B C A, ...) on a constant input or the --input files, after untimed warm-up rounds
// (the files' shapes fix the models' symbolic input dims, as in `smoke`); by default each timed
// run follows an untimed run of the same model, so that it finds its own weights in the caches
// as when it runs back to back (timed right after a 12 ms FP32 run, the bundled INT8 model took
// 7.1 ms instead of 6.7-6.9). A model's latency is the statistics of its whole-run times
// (eval/latency.h, as `eval` reports them); a later model's time relative to the first one is
// taken round by round (its run over the first model's run of the same round), so that a ratio
// is never made of times minutes apart.
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/progress.h"
#include "data/npy.h"
#include "eval/latency.h"
#include "onnx/model_io.h"
#include "pipeline/job_inputs.h"
#include "pipeline/jobs.h"
#include "pipeline/node_latency.h"

namespace lowbit::pipeline {

Status run_job(const LatencyJob& o, std::FILE* out) {
    if (o.models.empty()) return invalid("latency: give at least one model");
    if (o.rounds < 1) return invalid("--rounds {}: at least 1", o.rounds);
    if (o.warmup < 0) return invalid("--warmup {}: must not be negative", o.warmup);
    if (o.warm_runs < 0) return invalid("--warm-runs {}: must not be negative", o.warm_runs);
    if (o.threads < 0) return invalid("--threads {}: must not be negative", o.threads);
    auto shapes = parse_input_shapes(o.input_shapes);
    if (!shapes) return shapes.status();

    std::vector<Model> models;
    models.reserve(o.models.size());
    for (const std::string& path : o.models) {
        auto m = load_model(path);
        if (!m) return m.status();
        models.push_back(std::move(m).value());
    }
    std::vector<const Model*> ptrs;
    for (const Model& m : models) ptrs.push_back(&m);
    std::vector<Tensor> files;
    for (const std::string& f : o.inputs) {
        auto t = read_npy(f);
        if (!t) return t.status();
        files.push_back(std::move(t).value());
    }
    // Per model: the --input-shape map, plus each file's shape for an input the model leaves
    // symbolic (a fixed input must match its file, which measure_interleaved checks).
    std::vector<std::map<std::string, Shape>> model_shapes(models.size(), *shapes);
    for (size_t i = 0; i < models.size() && !files.empty(); ++i) {
        const std::vector<const ValueInfo*> ins = models[i].graph.data_inputs();
        if (ins.size() != files.size()) {
            return invalid("{}: has {} input(s), but --input was given {} time(s)", o.models[i],
                           ins.size(), files.size());
        }
        for (size_t k = 0; k < ins.size(); ++k) {
            if (!ins[k]->fixed_shape() && !shapes->count(ins[k]->name)) {
                model_shapes[i][ins[k]->name] = files[k].shape();
            }
        }
    }

    LatencyOptions lo;
    lo.runs = o.rounds;
    lo.warmup = o.warmup;
    lo.rotate = true;
    lo.turn_warmup = o.warm_runs;
    lo.exec.n_threads = o.threads;
    lo.exec.input_shapes = *shapes;
    lo.model_input_shapes = model_shapes;
    lo.inputs = files;
    lo.names = o.models;
    apply_engine_switches(o.engine, lo.exec);
    Progress progress("latency", o.warmup + o.rounds, "round");
    lo.progress = &progress;
    auto timed = measure_interleaved(ptrs, {}, lo);
    progress.finish();
    if (!timed) return timed.status().with_context("latency");

    const std::vector<double>& first = (*timed)[0].run_samples_ms;
    nlohmann::ordered_json j;
    j["rounds"] = o.rounds;
    j["warmup_rounds"] = o.warmup;
    j["warm_runs"] = o.warm_runs;
    j["threads"] = o.threads;
    if (files.empty()) {
        j["input"] = "constant 0.5 (float inputs; other types 0)";
    } else {
        j["input"] = o.inputs;
    }
    j["models"] = nlohmann::ordered_json::array();
    std::string summary;  // readable, for stderr (stdout is the JSON)
    for (size_t i = 0; i < models.size(); ++i) {
        const std::vector<double>& ms = (*timed)[i].run_samples_ms;
        const LatencyStats s = latency_stats_ms(ms);
        nlohmann::ordered_json m;
        m["model"] = o.models[i];
        set_latency_fields(m["latency"], s);
        summary += fmt::format("lowbit latency: {}: median {:.3f} ms ({:.3f}..{:.3f})", o.models[i],
                               s.median_ms, s.median_ci_low_ms, s.median_ci_high_ms);
        if (i > 0) {
            // Per round: this model's run over the first model's run of the same round. The
            // statistics of those ratios (median, its interval) come from the same code as the
            // times' (the fields keep their _ms names there).
            std::vector<double> ratio;
            for (size_t r = 0; r < ms.size(); ++r) ratio.push_back(ms[r] / first[r]);
            const LatencyStats q = latency_stats_ms(ratio);
            const auto [lo_it, hi_it] = std::minmax_element(ratio.begin(), ratio.end());
            m["ratio_to_first"] = {{"median", q.median_ms},
                                   {"median_ci", {q.median_ci_low_ms, q.median_ci_high_ms}},
                                   {"median_ci_level", q.median_ci_level},
                                   {"min", *lo_it},
                                   {"max", *hi_it},
                                   {"per_round", ratio}};
            summary += fmt::format("  x{:.3f} of the first (95% interval {:.3f}..{:.3f})",
                                   q.median_ms, q.median_ci_low_ms, q.median_ci_high_ms);
        }
        summary += "\n";
        j["models"].push_back(std::move(m));
    }
    const std::string text = j.dump(2) + "\n";
    std::fwrite(text.data(), 1, text.size(), out);
    std::fputs(summary.c_str(), stderr);
    return Status::ok();
}

}  // namespace lowbit::pipeline
