#include "eval/class_map.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/fs.h"
#include "core/text_lines.h"

namespace lowbit {

const std::array<int64_t, 80>& coco80_to_coco91() {
    static const std::array<int64_t, 80> table = {
        1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21,
        22, 23, 24, 25, 27, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44,
        46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65,
        67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90};
    return table;
}

namespace {

Result<ClassMap> read_map_file(const std::string& path) {
    LOWBIT_ASSIGN(std::string text, read_file(path));
    ClassMap m;
    m.how = path;
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (!j.is_discarded() && j.is_array()) {
        for (const auto& v : j) {
            if (!v.is_number_integer()) {
                return invalid("{}: class map array must hold integer category ids", path);
            }
            m.category_of.push_back(v.get<int64_t>());
        }
    } else if (!j.is_discarded() && j.is_object()) {
        for (const auto& [k, v] : j.items()) {
            int64_t cls = -1;
            try {
                cls = std::stoll(k);
            } catch (const std::exception&) {
                return invalid("{}: class map key '{}' is not a class index", path, k);
            }
            if (cls < 0 || cls > 100000 || !v.is_number_integer()) {
                return invalid("{}: bad class map entry '{}'", path, k);
            }
            if (m.category_of.size() <= static_cast<size_t>(cls)) {
                m.category_of.resize(static_cast<size_t>(cls) + 1, -1);
            }
            m.category_of[static_cast<size_t>(cls)] = v.get<int64_t>();
        }
    } else {
        for (const TextLine& line : content_lines(text)) {
            try {
                m.category_of.push_back(std::stoll(line.text));
            } catch (const std::exception&) {
                return invalid("{}:{}: expected a category id", path, line.number);
            }
        }
    }
    if (m.category_of.empty()) return invalid("{}: empty class map", path);
    return m;
}

}  // namespace

Result<ClassMap> build_class_map(const std::vector<CocoCategory>& categories, int num_classes,
                                 const std::string& map_file,
                                 const std::vector<std::string>& model_names) {
    if (!map_file.empty()) return read_map_file(map_file);
    std::vector<int64_t> ids;
    for (const CocoCategory& c : categories) ids.push_back(c.id);
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    ClassMap m;

    if (!model_names.empty() && !categories.empty()) {
        std::map<std::string, int64_t> by_name;
        for (const CocoCategory& c : categories) by_name.emplace(c.name, c.id);
        std::set<std::string> names(model_names.begin(), model_names.end());
        bool covered = std::all_of(categories.begin(), categories.end(),
                                   [&](const CocoCategory& c) { return names.count(c.name); });
        if (covered) {
            for (const std::string& n : model_names) {
                auto it = by_name.find(n);
                m.category_of.push_back(it == by_name.end() ? -1 : it->second);
            }
            m.how = "by class name";
            return m;
        }
    }
    int nc = num_classes > 0 ? num_classes : static_cast<int>(model_names.size());
    const auto& table = coco80_to_coco91();
    std::set<int64_t> coco_ids(table.begin(), table.end());
    bool all_coco = !ids.empty() && std::all_of(ids.begin(), ids.end(),
                                                [&](int64_t id) { return coco_ids.count(id); });
    if (all_coco && (nc == 80 || (nc == 0 && ids.size() == 80))) {
        m.category_of.assign(table.begin(), table.end());
        m.how = "coco80->91";
        return m;
    }
    m.category_of = ids;
    if (nc > 0) m.category_of.resize(static_cast<size_t>(nc), -1);
    m.how = "i-th category";
    return m;
}

std::vector<std::string> parse_ultralytics_names(const std::string& s) {
    // Python dict repr: {0: 'person', 1: "it's"}; keys are the class indices.
    std::map<int64_t, std::string> byidx;
    size_t i = s.find('{');
    if (i == std::string::npos) return {};
    ++i;
    while (i < s.size()) {
        while (i < s.size() && (s[i] == ' ' || s[i] == ',')) ++i;
        if (i >= s.size() || s[i] == '}') break;
        size_t colon = s.find(':', i);
        if (colon == std::string::npos) return {};
        int64_t key = 0;
        try {
            key = std::stoll(s.substr(i, colon - i));
        } catch (const std::exception&) {
            return {};
        }
        i = colon + 1;
        while (i < s.size() && s[i] == ' ') ++i;
        if (i >= s.size() || (s[i] != '\'' && s[i] != '"')) return {};
        char q = s[i++];
        std::string name;
        while (i < s.size() && s[i] != q) {
            if (s[i] == '\\' && i + 1 < s.size()) ++i;
            name += s[i++];
        }
        if (i >= s.size()) return {};
        ++i;
        byidx[key] = name;
    }
    std::vector<std::string> out;
    for (const auto& [k, v] : byidx) {
        if (k != static_cast<int64_t>(out.size())) return {};
        out.push_back(v);
    }
    return out;
}

}  // namespace lowbit
