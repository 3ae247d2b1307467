// lowbit compare results/*.json --out summary.md --html report.html: the variants side by side
// (the seed's summary.md, research/seed-spec.md §12), a recommendation, and a self-contained HTML
// report with mAP vs latency (Pareto front) and per-node sensitivity bars.
#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/fs.h"
#include "report/compare.h"
#include "report/html_report.h"

namespace lowbit::cli {

namespace {

namespace fs = std::filesystem;

struct CompareCliOptions {
    std::vector<std::string> results;
    std::string out;
    std::string html;
    std::string baseline;
    std::vector<std::string> sensitivity;
    double max_drop = 0.01;
};

bool same_file(const std::string& a, const std::string& b) {
    std::error_code ec;
    return a == b || fs::equivalent(a, b, ec);
}

Status run_compare(const CompareCliOptions& o) {
    report::CompareOptions co;
    co.max_drop = o.max_drop;
    co.baseline = o.baseline;
    std::vector<report::Variant> variants;
    for (const std::string& path : o.results) {
        LOWBIT_ASSIGN(report::Variant v, report::load_variant(path));
        if (!o.baseline.empty() && same_file(path, o.baseline)) co.baseline = path;
        variants.push_back(std::move(v));
    }
    // A baseline file that is not among the results is read and added.
    std::error_code ec;
    if (!o.baseline.empty() && co.baseline == o.baseline && fs::is_regular_file(o.baseline, ec)) {
        bool listed = false;
        for (const std::string& path : o.results) listed = listed || same_file(path, o.baseline);
        if (!listed) {
            LOWBIT_ASSIGN(report::Variant v, report::load_variant(o.baseline));
            variants.push_back(std::move(v));
        }
    }
    std::vector<report::SensitivityReport> sensitivity;
    for (const std::string& path : o.sensitivity) {
        LOWBIT_ASSIGN(report::SensitivityReport r, report::load_sensitivity_report(path));
        sensitivity.push_back(std::move(r));
    }
    LOWBIT_ASSIGN(report::Comparison c, report::compare_variants(std::move(variants), co));

    // Everything is rendered before the first write.
    std::string md = o.out.empty() ? "" : report::summary_markdown(c, co);
    std::string html = o.html.empty() ? "" : report::html_report(c, co, sensitivity);
    for (const std::string& path : {o.out, o.html}) {
        fs::path parent = fs::path(path).parent_path();
        if (!path.empty() && !parent.empty()) fs::create_directories(parent, ec);
    }
    if (!o.out.empty()) LOWBIT_TRY(write_file_atomic(o.out, md));
    if (!o.html.empty()) LOWBIT_TRY(write_file_atomic(o.html, html));

    std::fputs(report::markdown_table(c).c_str(), stdout);
    if (c.recommendation.index) {
        std::printf("recommended: %s (%s)\n", c.variants[*c.recommendation.index].name.c_str(),
                    c.recommendation.reason.c_str());
    } else {
        std::printf("recommended: none (%s)\n", c.recommendation.reason.c_str());
    }
    std::fflush(stdout);
    for (const std::string& path : {o.out, o.html}) {
        if (!path.empty()) std::fprintf(stderr, "lowbit compare: wrote %s\n", path.c_str());
    }
    return Status::ok();
}

}  // namespace

void add_compare_command(CLI::App& app, CommandFn& run) {
    auto o = std::make_shared<CompareCliOptions>();
    CLI::App* sub = app.add_subcommand(
        "compare",
        "Compare evaluated variants (results/*.json from `eval --out`): table with the drop "
        "against the baseline, latency, size and quantized nodes, a recommendation, summary.md "
        "and a self-contained report.html (mAP vs latency with the Pareto front, per-node "
        "sensitivity bars).");
    sub->add_option("results", o->results, "Results JSON files (variant name = file stem)")
        ->required();
    sub->add_option("--out", o->out, "Write summary.md here");
    sub->add_option("--html", o->html, "Write the HTML report here");
    sub->add_option("--baseline", o->baseline,
                    "Baseline results file or variant name (default: the variant named "
                    "baseline*)");
    sub->add_option("--sensitivity", o->sensitivity,
                    "Sensitivity report(s) (lowbit's or the seed's Torch one) to plot");
    sub->add_option("--max-drop", o->max_drop, "mAP_50_95 drop tolerated by the recommendation")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    sub->callback([o, &run] { run = [o] { return report("compare", run_compare(*o)); }; });
}

}  // namespace lowbit::cli
