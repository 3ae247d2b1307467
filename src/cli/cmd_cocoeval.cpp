// lowbit cocoeval --gt GT.json --dt DT.json: pycocotools-exact bbox COCOeval
// (research/yolo-coco.md §4), printing the familiar 12-line summary.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/fs.h"
#include "core/path_guard.h"
#include "core/text_lines.h"
#include "data/coco.h"
#include "eval/cocoeval.h"

namespace lowbit::cli {

namespace {

struct CocoEvalCliOptions {
    std::string gt;
    std::string dt;
    std::vector<std::string> img_ids;
    std::string img_ids_file;
    std::string json_out;
    int threads = 0;
    bool quiet = false;
};

Status parse_id(const std::string& text, const std::string& where, std::vector<int64_t>& out) {
    try {
        size_t used = 0;
        long long v = std::stoll(text, &used);
        if (used != text.size()) throw std::invalid_argument(text);
        out.push_back(v);
    } catch (const std::exception&) {
        return invalid("{}: '{}' is not an integer image id", where, text);
    }
    return Status::ok();
}

// One id per line; blank lines and '#' comments skipped (the seed's --image-ids-list format).
Status read_id_file(const std::string& path, std::vector<int64_t>& out) {
    LOWBIT_ASSIGN(std::string text, read_file(path));
    for (const TextLine& line : content_lines(text)) {
        LOWBIT_TRY(parse_id(line.text, fmt::format("{}:{}", path, line.number), out));
    }
    return Status::ok();
}

Status run_cocoeval(const CocoEvalCliOptions& o) {
    PathRoles roles;
    roles.input("--gt", o.gt);
    roles.input("--dt", o.dt);
    roles.input("--img-ids-file", o.img_ids_file);
    roles.output("--json", o.json_out);
    LOWBIT_TRY(check_path_roles(roles));
    auto t0 = std::chrono::steady_clock::now();
    CocoEvalOptions eo;
    eo.n_threads = o.threads;
    for (const std::string& v : o.img_ids) LOWBIT_TRY(parse_id(v, "--img-ids", eo.img_ids));
    if (!o.img_ids_file.empty()) LOWBIT_TRY(read_id_file(o.img_ids_file, eo.img_ids));
    if ((!o.img_ids.empty() || !o.img_ids_file.empty()) && eo.img_ids.empty()) {
        return invalid("--img-ids / --img-ids-file given but no image ids were read");
    }

    LOWBIT_ASSIGN(CocoDataset gt, load_coco_gt(o.gt));
    LOWBIT_ASSIGN(std::vector<CocoAnnotation> dt, load_coco_results(o.dt));
    auto t1 = std::chrono::steady_clock::now();
    auto res = coco_evaluate(gt, dt, eo);
    if (!res) return res.status().with_context(o.dt);
    const CocoEvalResult& r = *res;
    auto t2 = std::chrono::steady_clock::now();
    double load_s = std::chrono::duration<double>(t1 - t0).count();
    double eval_s = std::chrono::duration<double>(t2 - t1).count();

    std::fputs(coco_summary(r).c_str(), stdout);
    std::fflush(stdout);
    if (!o.quiet) {
        std::fprintf(stderr,
                     "cocoeval: %zu images, %zu categories, %lld GT, %lld detections; load %.3f s, "
                     "evaluate %.3f s\n",
                     r.img_ids.size(), r.cat_ids.size(), static_cast<long long>(r.num_gt),
                     static_cast<long long>(r.num_detections), load_s, eval_s);
    }

    if (!o.json_out.empty()) {
        nlohmann::ordered_json j;
        j["gt"] = o.gt;
        j["dt"] = o.dt;
        j["stats"] = r.stats;
        nlohmann::ordered_json named;
        for (size_t i = 0; i < 12; ++i) named[coco_stat_names()[i]] = r.stats[i];
        j["named_stats"] = named;
        j["num_images"] = r.img_ids.size();
        j["num_categories"] = r.cat_ids.size();
        j["num_gt"] = r.num_gt;
        j["num_detections"] = r.num_detections;
        std::vector<double> ap = coco_per_category_ap(r);
        nlohmann::ordered_json per_cat = nlohmann::ordered_json::array();
        for (size_t k = 0; k < r.cat_ids.size(); ++k) {
            std::string name;
            for (const CocoCategory& c : gt.categories) {
                if (c.id == r.cat_ids[k]) name = c.name;
            }
            per_cat.push_back({{"id", r.cat_ids[k]}, {"name", name}, {"ap", ap[k]}});
        }
        j["per_category"] = per_cat;
        j["seconds"] = {{"load", load_s}, {"evaluate", eval_s}};
        LOWBIT_TRY(write_file_atomic(o.json_out, j.dump(2) + "\n"));
    }
    return Status::ok();
}

}  // namespace

void add_cocoeval_command(CLI::App& app, CommandFn& run) {
    auto o = std::make_shared<CocoEvalCliOptions>();
    CLI::App* sub = app.add_subcommand(
        "cocoeval",
        "COCO bbox evaluation with pycocotools' exact rules: ground-truth JSON + results JSON -> "
        "the 12 COCO stats (printed as pycocotools prints them).");
    sub->add_option("--gt", o->gt, "Ground-truth annotation file (instances_*.json)")
        ->required()
        ->check(CLI::ExistingFile);
    sub->add_option("--dt,--results", o->dt, "Detections: COCO results JSON array")
        ->required()
        ->check(CLI::ExistingFile);
    sub->add_option("--img-ids", o->img_ids,
                    "Evaluate only these image ids (space or comma separated)")
        ->delimiter(',');
    sub->add_option("--img-ids-file", o->img_ids_file,
                    "Evaluate only the image ids in FILE (one per line, # comments)")
        ->check(CLI::ExistingFile);
    sub->add_option("--json", o->json_out, "Write {\"stats\": [12 numbers], ...} to this file");
    sub->add_option("--threads", o->threads, "Threads (default: all cores)")
        ->check(CLI::NonNegativeNumber);
    sub->add_flag("-q,--quiet", o->quiet, "No timing line on stderr");
    sub->callback([o, &run] { run = [o] { return run_cocoeval(*o); }; });
}

}  // namespace lowbit::cli
