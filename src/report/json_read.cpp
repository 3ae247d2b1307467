#include "report/json_read.h"

#include <cmath>

#include "core/fs.h"

namespace lowbit::report {

namespace {

const char* type_name(const nlohmann::json& v) {
    if (v.is_null()) return "null";
    if (v.is_boolean()) return "a boolean";
    if (v.is_number()) return "a number";
    if (v.is_string()) return "a string";
    if (v.is_array()) return "an array";
    return "an object";
}

}  // namespace

Result<nlohmann::json> read_json_file(const std::string& path) {
    LOWBIT_ASSIGN(std::string text, read_file(path));
    try {
        return nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
        return invalid("{}: not valid JSON (byte {}): {}", path, e.byte, e.what());
    }
}

Status JsonAt::type_error(const char* expected) const {
    return invalid("{}: expected {}, found {}", where(), expected, type_name(*v));
}

Result<JsonAt> JsonAt::at(const std::string& name) const {
    std::string k = key.empty() ? name : key + "." + name;
    if (!v->is_object()) return type_error("an object");
    auto it = v->find(name);
    if (it == v->end()) return invalid("{}: missing key {}", file, k);
    return JsonAt{&*it, file, k};
}

std::optional<JsonAt> JsonAt::find(const std::string& name) const {
    if (!v->is_object()) return std::nullopt;
    auto it = v->find(name);
    if (it == v->end() || it->is_null()) return std::nullopt;
    return JsonAt{&*it, file, key.empty() ? name : key + "." + name};
}

JsonAt JsonAt::index(size_t i) const {
    return JsonAt{&(*v)[i], file, key + "[" + std::to_string(i) + "]"};
}

Result<std::string> JsonAt::string() const {
    if (!v->is_string()) return type_error("a string");
    return v->get<std::string>();
}

Result<double> JsonAt::number() const {
    if (!v->is_number()) return type_error("a number");
    double d = v->get<double>();
    if (!std::isfinite(d)) return type_error("a finite number");
    return d;
}

Result<int64_t> JsonAt::integer() const {
    if (v->is_number_integer()) return v->get<int64_t>();
    if (v->is_number_float()) {
        double d = v->get<double>();
        if (std::isfinite(d) && d == std::floor(d)) return static_cast<int64_t>(d);
    }
    return type_error("an integer");
}

Status JsonAt::expect_array() const {
    return v->is_array() ? Status::ok() : type_error("an array");
}

Status JsonAt::expect_object() const {
    return v->is_object() ? Status::ok() : type_error("an object");
}

}  // namespace lowbit::report
