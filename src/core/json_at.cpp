#include "core/json_at.h"

#include <cmath>

#include "core/fs.h"

namespace lowbit {

namespace {

const char* type_name(const nlohmann::json& v) {
    if (v.is_null()) return "null";
    if (v.is_boolean()) return "a boolean";
    if (v.is_number()) return "a number";
    if (v.is_string()) return "a string";
    if (v.is_array()) return "an array";
    if (v.is_binary()) return "binary data";
    return "an object";
}

}  // namespace

Result<nlohmann::json> parse_json_text(const std::string& text, const std::string& what) {
    try {
        return nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        // parse_error carries the byte; other nlohmann errors (e.g. invalid UTF-8) do not.
        if (const auto* pe = dynamic_cast<const nlohmann::json::parse_error*>(&e)) {
            return invalid("{}: not valid JSON (byte {}): {}", what, pe->byte, e.what());
        }
        return invalid("{}: not valid JSON: {}", what, e.what());
    }
}

Result<nlohmann::json> read_json_file(const std::string& path, uint64_t max_bytes) {
    LOWBIT_ASSIGN(std::string text, read_file(path, max_bytes));
    return parse_json_text(text, path);
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
    if (v->is_number_unsigned()) {
        const uint64_t u = v->get<uint64_t>();
        if (u > static_cast<uint64_t>(INT64_MAX)) return type_error("an integer that fits in 64 bits");
        return static_cast<int64_t>(u);
    }
    if (v->is_number_integer()) return v->get<int64_t>();
    if (v->is_number_float()) {
        double d = v->get<double>();
        // 2^63 itself does not fit; the cast of anything in the open range is defined.
        if (std::isfinite(d) && d == std::floor(d) && d >= -9223372036854775808.0 &&
            d < 9223372036854775808.0) {
            return static_cast<int64_t>(d);
        }
    }
    return type_error("an integer");
}

Result<bool> JsonAt::boolean() const {
    if (!v->is_boolean()) return type_error("a boolean");
    return v->get<bool>();
}

Status JsonAt::expect_array() const {
    return v->is_array() ? Status::ok() : type_error("an array");
}

Status JsonAt::expect_object() const {
    return v->is_object() ? Status::ok() : type_error("an object");
}

Result<std::string> JsonAt::string_or(const std::string& name, const std::string& fallback) const {
    auto m = find(name);
    return m ? m->string() : Result<std::string>(fallback);
}

Result<double> JsonAt::number_or(const std::string& name, double fallback) const {
    auto m = find(name);
    return m ? m->number() : Result<double>(fallback);
}

Result<int64_t> JsonAt::integer_or(const std::string& name, int64_t fallback) const {
    auto m = find(name);
    return m ? m->integer() : Result<int64_t>(fallback);
}

}  // namespace lowbit
