#include "calib/ranges_file.h"

#include <cstdint>
#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "core/json_at.h"

namespace lowbit::calib {

Status save_ranges(const std::string& path, const RangesFile& r) {
    nlohmann::ordered_json j;
    j["format"] = "lowbit-ranges";
    j["version"] = 1;
    j["method"] = r.method;
    j["mode"] = r.mode;
    j["percentile"] = r.percentile;
    j["samples"] = r.samples;
    j["model"] = r.model;
    nlohmann::ordered_json t = nlohmann::ordered_json::object();
    for (const auto& [name, v] : r.tensors) {
        t[name] = {{"amax", v.amax},
                   {"min", v.min},
                   {"max", v.max},
                   {"count", v.count},
                   {"group", v.group}};
    }
    j["tensors"] = t;
    return write_file_atomic(path, j.dump(1) + "\n");
}

Result<RangesFile> load_ranges(const std::string& path) {
    LOWBIT_ASSIGN(std::string text, read_file(path, kMaxJsonDocumentBytes));
    return parse_ranges(text, path);
}

Result<RangesFile> parse_ranges(const std::string& text, const std::string& path) {
    // Every value is read with its type checked (core/json_at.h): a wrong type is an error that
    // names the file and the key, never an exception.
    LOWBIT_ASSIGN(nlohmann::json doc, parse_json_text(text, path));
    const JsonAt root = json_root(doc, path);
    if (!doc.is_object()) return invalid("{}: not a JSON object", path);
    LOWBIT_ASSIGN(std::string format, root.string_or("format", ""));
    if (format != "lowbit-ranges") {
        return invalid("{}: not a lowbit ranges file (\"format\" is not \"lowbit-ranges\")", path);
    }
    RangesFile r;
    LOWBIT_ASSIGN(r.method, root.string_or("method", ""));
    LOWBIT_ASSIGN(r.mode, root.string_or("mode", ""));
    LOWBIT_ASSIGN(r.percentile, root.number_or("percentile", 0.0));
    LOWBIT_ASSIGN(r.samples, root.integer_or("samples", 0));
    LOWBIT_ASSIGN(r.model, root.string_or("model", ""));
    auto tensors = root.find("tensors");
    if (!tensors) return invalid("{}: missing \"tensors\" object", path);
    LOWBIT_TRY(tensors->expect_object());
    for (const auto& [name, value] : tensors->v->items()) {
        LOWBIT_ASSIGN(JsonAt v, tensors->at(name));
        LOWBIT_TRY(v.expect_object());
        LOWBIT_ASSIGN(JsonAt amax, v.at("amax"));
        TensorRange tr;
        LOWBIT_ASSIGN(tr.amax, amax.number());
        if (tr.amax < 0) return invalid("{}: must be >= 0, found {}", amax.where(), tr.amax);
        LOWBIT_ASSIGN(tr.min, v.number_or("min", -tr.amax));
        LOWBIT_ASSIGN(tr.max, v.number_or("max", tr.amax));
        LOWBIT_ASSIGN(tr.count, v.integer_or("count", 0));
        LOWBIT_ASSIGN(const int64_t group, v.integer_or("group", -1));
        if (group < -1 || group > INT32_MAX) {
            return invalid("{}: tensors.{}.group: expected -1 or a group number, found {}", path,
                           name, group);
        }
        tr.group = static_cast<int>(group);
        r.tensors[name] = tr;
    }
    return r;
}

}  // namespace lowbit::calib
