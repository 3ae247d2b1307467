#include "calib/ranges_file.h"

#include <nlohmann/json.hpp>

#include "core/fs.h"

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
    LOWBIT_ASSIGN(std::string text, read_file(path));
    nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return invalid("{}: not a JSON object", path);
    if (j.value("format", "") != "lowbit-ranges") {
        return invalid("{}: not a lowbit ranges file (\"format\" is not \"lowbit-ranges\")", path);
    }
    RangesFile r;
    r.method = j.value("method", "");
    r.mode = j.value("mode", "");
    r.percentile = j.value("percentile", 0.0);
    r.samples = j.value("samples", int64_t{0});
    r.model = j.value("model", "");
    if (!j.contains("tensors") || !j["tensors"].is_object()) {
        return invalid("{}: missing \"tensors\" object", path);
    }
    for (const auto& [name, v] : j["tensors"].items()) {
        if (!v.is_object() || !v.contains("amax") || !v["amax"].is_number()) {
            return invalid("{}: tensor '{}' has no numeric \"amax\"", path, name);
        }
        TensorRange tr;
        tr.amax = v["amax"].get<double>();
        tr.min = v.value("min", -tr.amax);
        tr.max = v.value("max", tr.amax);
        tr.count = v.value("count", int64_t{0});
        tr.group = v.value("group", -1);
        r.tensors[name] = tr;
    }
    return r;
}

}  // namespace lowbit::calib
