// Reading JSON documents with type checks: a value together with where it came from, so that a
// wrong type is an error naming the file and the key path ("ranges.json: tensors.x.min: expected
// a number, found a string") instead of an exception from nlohmann's accessors. Used by every
// reader of a small typed JSON file (ranges files, run step records, reports, results);
// nlohmann's exceptions are caught here and never cross the library's API.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "core/status.h"

namespace lowbit {

// Largest JSON document read whole into memory (ranges files, records, reports): 256 MiB.
inline constexpr uint64_t kMaxJsonDocumentBytes = uint64_t{256} << 20;

// Parses a whole file; errors name the file (and the byte offset of a syntax error).
Result<nlohmann::json> read_json_file(const std::string& path,
                                      uint64_t max_bytes = kMaxJsonDocumentBytes);
// Parses text already in memory; `what` names it in errors.
Result<nlohmann::json> parse_json_text(const std::string& text, const std::string& what);

struct JsonAt {
    const nlohmann::json* v = nullptr;
    std::string file;
    std::string key;  // "" for the document, else "metrics.mAP_50" / "nodes[3].node"

    // The member `name`; error if this is not an object or the member is absent.
    Result<JsonAt> at(const std::string& name) const;
    // The member `name` if present (null counts as absent); nullopt otherwise.
    std::optional<JsonAt> find(const std::string& name) const;
    // Element i of an array (the caller checked expect_array() and the size).
    JsonAt index(size_t i) const;

    Result<std::string> string() const;
    Result<double> number() const;  // a finite number; null is an error
    Result<int64_t> integer() const;
    Result<bool> boolean() const;
    Status expect_array() const;
    Status expect_object() const;

    // The member `name` read with the given accessor, or `fallback` when it is absent (or null).
    Result<std::string> string_or(const std::string& name, const std::string& fallback) const;
    Result<double> number_or(const std::string& name, double fallback) const;
    Result<int64_t> integer_or(const std::string& name, int64_t fallback) const;

    Status type_error(const char* expected) const;
    std::string where() const { return key.empty() ? file : file + ": " + key; }
};

inline JsonAt json_root(const nlohmann::json& doc, const std::string& file) {
    return JsonAt{&doc, file, ""};
}

}  // namespace lowbit
