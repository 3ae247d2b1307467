// Reading small JSON input files (reports, results) with errors that name the file and the key
// path: "results/fp8_k5.json: metrics.mAP_50_95: expected a number". nlohmann's exceptions are
// caught here and never cross the library's API.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "core/status.h"

namespace lowbit::report {

// Parses a whole file; errors name the file (and the byte offset of a syntax error).
Result<nlohmann::json> read_json_file(const std::string& path);

// A JSON value together with where it came from, for error messages.
struct JsonAt {
    const nlohmann::json* v = nullptr;
    std::string file;
    std::string key;  // "" for the document, else "metrics.mAP_50" / "nodes[3].node"

    // The member `name`; error if this is not an object or the member is absent.
    Result<JsonAt> at(const std::string& name) const;
    // The member `name` if present (null counts as absent); nullopt otherwise.
    std::optional<JsonAt> find(const std::string& name) const;
    JsonAt index(size_t i) const;

    Result<std::string> string() const;
    Result<double> number() const;  // null is an error
    Result<int64_t> integer() const;
    Status expect_array() const;
    Status expect_object() const;

    Status type_error(const char* expected) const;
    std::string where() const { return key.empty() ? file : file + ": " + key; }
};

inline JsonAt json_root(const nlohmann::json& doc, const std::string& file) {
    return JsonAt{&doc, file, ""};
}

}  // namespace lowbit::report
