#include "report/sensitivity_report.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "report/json_read.h"

namespace lowbit::report {

namespace {

Status read_lowbit(const JsonAt& root, SensitivityReport& r) {
    r.kind = SensitivityReport::Kind::Lowbit;
    if (auto m = root.find("model")) {
        LOWBIT_ASSIGN(r.model, m->string());
    }
    if (auto m = root.find("mode")) {
        LOWBIT_ASSIGN(r.mode, m->string());
    }
    if (auto m = root.find("metric")) {
        LOWBIT_ASSIGN(r.metric, m->string());
    }
    LOWBIT_ASSIGN(JsonAt nodes, root.at("nodes"));
    LOWBIT_TRY(nodes.expect_array());
    for (size_t i = 0; i < nodes.v->size(); ++i) {
        JsonAt row = nodes.index(i);
        LOWBIT_TRY(row.expect_object());
        SensitivityEntry e;
        LOWBIT_ASSIGN(JsonAt name, row.at("node"));
        LOWBIT_ASSIGN(e.name, name.string());
        // A score that was not a finite number (NaN is written as null; earlier lowbit versions
        // wrote the largest double for NaN and infinity) cannot be ranked: refused, so that no
        // scheme is built from it.
        LOWBIT_ASSIGN(JsonAt score, row.at("score"));
        if (score.v->is_null()) {
            return invalid(
                "{}: node '{}' has score null (not a finite number); nodes whose sensitivity "
                "could not be measured are not ranked (re-run `lowbit sensitivity`)",
                score.file, e.name);
        }
        LOWBIT_ASSIGN(e.score, score.number());
        if (!std::isfinite(e.score) || std::fabs(e.score) == std::numeric_limits<double>::max()) {
            return invalid(
                "{}: node '{}' has score {} (the value older lowbit versions wrote for a NaN or "
                "infinite score); such a ranking is meaningless (re-run `lowbit sensitivity`)",
                score.file, e.name, e.score);
        }
        e.rank = static_cast<int>(i) + 1;
        if (auto rank = row.find("rank")) {
            LOWBIT_ASSIGN(int64_t k, rank->integer());
            e.rank = static_cast<int>(k);
        }
        if (auto op = row.find("op_type")) {
            LOWBIT_ASSIGN(e.op_type, op->string());
        }
        if (auto share = row.find("macs_share")) {
            LOWBIT_ASSIGN(double s, share->number());
            e.macs_share = s;
        }
        r.entries.push_back(std::move(e));
    }
    // "nodes" is written in rank order; sort anyway so a hand-edited file still ranks right.
    std::stable_sort(
        r.entries.begin(), r.entries.end(),
        [](const SensitivityEntry& a, const SensitivityEntry& b) { return a.rank < b.rank; });
    return Status::ok();
}

// Rows in file order: the seed relies on the writer's descending sort (seed-spec §10.1).
Status read_torch(const JsonAt& root, SensitivityReport& r) {
    r.kind = SensitivityReport::Kind::Torch;
    if (auto m = root.find("model")) {
        if (auto id = m->find("id"); id && id->v->is_string()) r.model = *id->string();
    }
    if (auto q = root.find("quantization")) {
        if (auto pair = q->find("quant_pair")) {
            auto w = pair->find("weight");
            auto a = pair->find("activation");
            if (w && a && w->v->is_string() && a->v->is_string()) {
                r.mode = *w->string() + "-" + *a->string();
            }
        }
    }
    if (auto s = root.find("scheme")) {
        if (auto m = s->find("auto_quantize_method"); m && m->v->is_string()) {
            r.metric = *m->string();
        }
    }
    LOWBIT_ASSIGN(JsonAt rows, root.at("layer_sensitivity"));
    LOWBIT_TRY(rows.expect_array());
    for (size_t i = 0; i < rows.v->size(); ++i) {
        JsonAt row = rows.index(i);
        LOWBIT_TRY(row.expect_object());
        SensitivityEntry e;
        LOWBIT_ASSIGN(JsonAt layer, row.at("layer"));
        LOWBIT_ASSIGN(e.name, layer.string());
        if (auto s = row.find("sensitivity")) {
            LOWBIT_ASSIGN(e.score, s->number());
        }
        e.rank = static_cast<int>(r.entries.size()) + 1;
        r.entries.push_back(std::move(e));
    }
    return Status::ok();
}

}  // namespace

Result<SensitivityReport> load_sensitivity_report(const std::string& path) {
    LOWBIT_ASSIGN(nlohmann::json doc, read_json_file(path));
    JsonAt root = json_root(doc, path);
    LOWBIT_TRY(root.expect_object());
    SensitivityReport r;
    r.path = path;
    if (doc.contains("nodes")) {
        LOWBIT_TRY(read_lowbit(root, r));
    } else if (doc.contains("layer_sensitivity")) {
        LOWBIT_TRY(read_torch(root, r));
    } else {
        return invalid(
            "{}: missing key nodes (a lowbit sensitivity report) or layer_sensitivity (the "
            "seed's Torch layer-sensitivity-report.json)",
            path);
    }
    if (r.entries.empty()) return invalid("{}: the report lists no layers", path);
    return r;
}

}  // namespace lowbit::report
