#include "report/torch_names.h"

#include <algorithm>
#include <functional>

namespace lowbit::report {

namespace {

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    size_t b = 0;
    while (true) {
        size_t e = s.find(sep, b);
        out.push_back(s.substr(b, e == std::string::npos ? std::string::npos : e - b));
        if (e == std::string::npos) break;
        b = e + 1;
    }
    return out;
}

bool is_number(const std::string& atom) {
    return !atom.empty() &&
           std::all_of(atom.begin(), atom.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// A scope's atoms: one name, then zero or more indices ("one2one_cv2.0.0").
bool is_scope(const std::vector<std::string>& atoms) {
    if (atoms.empty() || atoms[0].empty() || is_number(atoms[0])) return false;
    return std::all_of(atoms.begin() + 1, atoms.end(), is_number);
}

// "/a/b/Op" -> {"a", "b"} and the op part "Op"; false for names without a scope.
bool scopes_of(const std::string& onnx_name, std::vector<std::string>& scopes, std::string& op) {
    std::string s = onnx_name;
    if (!s.empty() && s.front() == '/') s.erase(0, 1);
    if (s.empty()) return false;
    scopes = split(s, '/');
    if (scopes.size() < 2) return false;
    op = scopes.back();
    scopes.pop_back();
    return true;
}

}  // namespace

std::optional<std::string> torch_module_name(const std::string& onnx_name) {
    std::vector<std::string> scopes;
    std::string op;
    if (!scopes_of(onnx_name, scopes, op)) return std::nullopt;
    // "Conv_3": the fourth Conv emitted inside one module, not a module's own op.
    size_t us = op.rfind('_');
    if (us != std::string::npos && us + 1 < op.size() && is_number(op.substr(us + 1))) {
        return std::nullopt;
    }
    std::vector<std::string> path;   // qualified name, atom by atom
    std::vector<std::string> scope;  // the current module's scope (suffix of path)
    for (const std::string& part : scopes) {
        std::vector<std::string> atoms = split(part, '.');
        if (!is_scope(atoms)) return std::nullopt;
        bool element = !scope.empty() && atoms.size() > scope.size() &&
                       std::equal(scope.begin(), scope.end(), atoms.begin());
        path.insert(path.end(), atoms.begin() + (element ? scope.size() : 0), atoms.end());
        scope = std::move(atoms);
    }
    std::string out;
    for (const std::string& a : path) out += (out.empty() ? "" : ".") + a;
    return out;
}

bool torch_name_matches(const std::string& torch_name, const std::string& onnx_name) {
    std::vector<std::string> scopes;
    std::string op;
    if (!scopes_of(onnx_name, scopes, op) || torch_name.empty()) return false;
    const std::vector<std::string> t = split(torch_name, '.');
    std::vector<std::vector<std::string>> parts;
    for (const std::string& s : scopes) {
        parts.push_back(split(s, '.'));
        if (!is_scope(parts.back())) return false;
    }
    // The scope of prefix t[0, end) equals `p` when t[end - |p|, end) == p: `p` begins with a
    // name and continues with numbers only, so its first atom is the prefix's last name atom.
    auto scope_ends_at = [&](const std::vector<std::string>& p, size_t end) {
        return end >= p.size() && std::equal(p.begin(), p.end(), t.begin() + (end - p.size()));
    };
    // Scopes j.. must be the scopes of increasing prefixes longer than `after`, the last being t,
    // each starting at or before the end of the previous one: every atom of t is covered, as
    // the export covers the uncalled containers (the root Sequential "model", ModuleLists "m")
    // by the numbered scope of their element. Allowing gaps would let "model.2.m.0.cv1.conv"
    // match "/model.2/cv1/conv/Conv".
    std::function<bool(size_t, size_t)> fits = [&](size_t j, size_t after) {
        if (j == parts.size()) return after == t.size();
        for (size_t end = after + 1; end <= t.size(); ++end) {
            if (end - std::min(end, parts[j].size()) > after) break;  // would leave a gap
            if (scope_ends_at(parts[j], end) && fits(j + 1, end)) return true;
        }
        return false;
    };
    return fits(0, 0);
}

TorchNameIndex::TorchNameIndex(const std::vector<std::pair<std::string, std::string>>& nodes,
                               const std::string& op_type) {
    for (const auto& [name, op] : nodes) {
        if (op != op_type) continue;
        names_.push_back(name);
        std::optional<std::string> t = torch_module_name(name);
        if (!t) continue;
        if (!by_torch_.emplace(*t, name).second) ++clashes_[*t];
    }
}

std::optional<std::string> TorchNameIndex::find(const std::string& torch_name) const {
    if (clashes_.count(torch_name)) return std::nullopt;
    if (auto it = by_torch_.find(torch_name); it != by_torch_.end()) return it->second;
    std::optional<std::string> found;
    for (const std::string& n : names_) {
        if (!torch_name_matches(torch_name, n)) continue;
        if (found) return std::nullopt;
        found = n;
    }
    return found;
}

}  // namespace lowbit::report
