#include "quant/head_exclude.h"

#include <algorithm>
#include <set>

#include "quant/graph_view.h"

namespace lowbit::quant {

namespace {

// "/model.23/one2one_cv2.0/x/Conv" -> "/model.23/"; "" when the name has no such scope.
std::string top_scope(const std::string& name) {
    if (name.empty() || name[0] != '/') return {};
    auto second = name.find('/', 1);
    if (second == std::string::npos || second == 1) return {};
    return name.substr(0, second + 1);
}

}  // namespace

Result<HeadExcludeResult> head_exclusion_list(const Graph& g, const HeadExcludeOptions& o) {
    GraphView v(g);
    const std::set<std::string> types(o.op_types.begin(), o.op_types.end());
    HeadExcludeResult r;

    // Final Convs: walk back from the graph outputs, stopping at (and collecting) Convs.
    std::set<size_t> finals, seen;
    std::vector<size_t> stack;
    for (const auto& vo : g.outputs) {
        long p = v.producer(vo.name);
        if (p >= 0) stack.push_back(static_cast<size_t>(p));
    }
    while (!stack.empty()) {
        size_t n = stack.back();
        stack.pop_back();
        if (!seen.insert(n).second) continue;
        if (v.node(n).op_type == "Conv") {
            finals.insert(n);
            continue;
        }
        for (size_t p : v.parents(n)) stack.push_back(p);
    }
    for (size_t f : finals) r.final_convs.push_back(v.node(f).name);
    std::sort(r.final_convs.begin(), r.final_convs.end());

    std::string scope = o.scope;
    if (!scope.empty()) {
        r.method = "given";
    } else if (!finals.empty()) {
        std::set<std::string> scopes;
        for (size_t f : finals) scopes.insert(top_scope(v.node(f).name));
        if (scopes.size() == 1 && !scopes.begin()->empty()) {
            scope = *scopes.begin();
            r.method = "structure (final convs)";
        }
    }
    std::set<std::string> out;
    if (!scope.empty()) {
        r.scope = scope;
        for (const auto& n : g.nodes) {
            if (!n.name.empty() && n.name.rfind(scope, 0) == 0 && types.count(n.op_type)) {
                out.insert(n.name);
            }
        }
    } else {
        // Head branches: each final Conv starts a branch; a node joins a branch when all its
        // readers belong to that one branch. A tensor read by two branches (a neck feature)
        // ends both, so the walk never enters the neck.
        r.method = "structure (head branches)";
        std::vector<int> branch(v.size(), -1);
        int id = 0;
        for (size_t f : finals) branch[f] = id++;
        for (bool changed = true; changed;) {
            changed = false;
            for (auto it = v.topo().rbegin(); it != v.topo().rend(); ++it) {
                const size_t n = *it;
                if (branch[n] >= 0) continue;
                auto ch = v.children(n);
                if (ch.empty()) continue;
                const int b = branch[ch[0]];
                bool same = b >= 0;
                for (size_t c : ch) same = same && branch[c] == b;
                if (same) {
                    branch[n] = b;
                    changed = true;
                }
            }
        }
        for (size_t i = 0; i < v.size(); ++i) {
            if (branch[i] >= 0 && types.count(v.node(i).op_type) && !v.node(i).name.empty()) {
                out.insert(v.node(i).name);
            }
        }
    }
    r.nodes.assign(out.begin(), out.end());  // std::set<std::string>: byte order, like sorted()
    return r;
}

}  // namespace lowbit::quant
