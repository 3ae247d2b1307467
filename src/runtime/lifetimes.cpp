#include "runtime/lifetimes.h"

#include "runtime/program.h"

namespace lowbit {

std::map<std::string, Lifetime> tensor_lifetimes(
    const std::vector<Step>& steps, const std::vector<std::string>& graph_inputs,
    const std::vector<std::string>& graph_outputs,
    const std::map<std::string, TensorAlias>& aliases) {
    auto root = [&](const std::string& name) -> const std::string& {
        auto a = aliases.find(name);
        return a == aliases.end() ? name : a->second.root;
    };
    std::map<std::string, Lifetime> life;
    for (const auto& name : graph_inputs) life[name] = {-1, -1};
    for (size_t s = 0; s < steps.size(); ++s) {
        const int step = static_cast<int>(s);
        for (const auto& in : steps[s].in) {
            auto it = life.find(root(in));
            if (it != life.end()) it->second.last = step;
        }
        for (const auto& o : steps[s].out) {
            if (o.empty()) continue;
            auto it = life.find(root(o));
            if (it == life.end())
                life[root(o)] = {step, step};
            else
                it->second.last = step;
        }
    }
    const int end = static_cast<int>(steps.size());
    for (const auto& name : graph_outputs) {
        auto it = life.find(root(name));
        if (it != life.end()) it->second.last = end;
    }
    return life;
}

}  // namespace lowbit
