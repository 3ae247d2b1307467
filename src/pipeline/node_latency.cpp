#include "pipeline/node_latency.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <unordered_map>

namespace lowbit::pipeline {

namespace {

bool is_qdq(const Node& n) {
    return n.op_type == "QuantizeLinear" || n.op_type == "DequantizeLinear";
}

// The nodes a Q/DQ node feeds, through further Q/DQ nodes (each node once).
void fed_nodes(const Graph& g, const std::unordered_map<std::string, std::vector<size_t>>& users,
               size_t qdq, std::set<size_t>& seen, std::vector<size_t>& out) {
    for (const std::string& t : g.nodes[qdq].outputs) {
        auto it = users.find(t);
        if (t.empty() || it == users.end()) continue;
        for (size_t u : it->second) {
            if (!seen.insert(u).second) continue;
            if (is_qdq(g.nodes[u])) {
                fed_nodes(g, users, u, seen, out);
            } else {
                out.push_back(u);
            }
        }
    }
}

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

NodeLatency attribute_steps(const Graph& g, const std::vector<StepTime>& steps,
                            const std::set<std::string>& candidates) {
    NodeLatency r;
    for (const std::string& c : candidates) r.node_ms[c] = 0;
    std::unordered_map<std::string, size_t> by_name;
    std::unordered_map<std::string, std::vector<size_t>> users;
    for (size_t i = 0; i < g.nodes.size(); ++i) {
        if (!g.nodes[i].name.empty()) by_name.emplace(g.nodes[i].name, i);
        for (const std::string& t : g.nodes[i].inputs) {
            if (!t.empty()) users[t].push_back(i);
        }
    }
    for (const StepTime& s : steps) {
        const std::string* owner = nullptr;
        if (candidates.count(s.node)) owner = &s.node;
        for (size_t f = 0; !owner && f < s.fused.size(); ++f) {
            if (candidates.count(s.fused[f])) owner = &s.fused[f];
        }
        if (owner) {
            r.node_ms[*owner] += s.ms;
            continue;
        }
        auto it = s.node.empty() ? by_name.end() : by_name.find(s.node);
        if (it == by_name.end() || !is_qdq(g.nodes[it->second])) {
            r.other_ms += s.ms;
            continue;
        }
        std::set<size_t> seen{it->second};
        std::vector<size_t> fed;
        fed_nodes(g, users, it->second, seen, fed);
        if (fed.empty()) {
            r.other_ms += s.ms;
            continue;
        }
        const double share = s.ms / static_cast<double>(fed.size());
        for (size_t u : fed) {
            auto c = r.node_ms.find(g.nodes[u].name);
            if (c != r.node_ms.end() && candidates.count(g.nodes[u].name)) {
                c->second += share;
            } else {
                r.other_ms += share;
            }
        }
    }
    return r;
}

NodeLatency median_latency(const std::vector<NodeLatency>& runs) {
    NodeLatency r;
    if (runs.empty()) return r;
    std::vector<double> v;
    for (const auto& [name, ms] : runs.front().node_ms) {
        v.clear();
        for (const NodeLatency& x : runs) {
            auto it = x.node_ms.find(name);
            v.push_back(it == x.node_ms.end() ? 0.0 : it->second);
        }
        r.node_ms[name] = median(v);
    }
    v.clear();
    for (const NodeLatency& x : runs) v.push_back(x.other_ms);
    r.other_ms = median(v);
    v.clear();
    for (const NodeLatency& x : runs) v.push_back(x.run_ms);
    r.run_ms = median(v);
    return r;
}

Result<NodeLatency> stepwise_latency(const Graph& g, const std::vector<std::vector<StepTime>>& runs,
                                     const std::vector<double>& run_ms,
                                     const std::set<std::string>& candidates) {
    if (runs.empty()) return invalid("latency: no timed runs");
    std::vector<StepTime> med = runs.front();
    std::vector<double> v;
    for (size_t k = 0; k < med.size(); ++k) {
        v.clear();
        for (const auto& r : runs) {
            if (r.size() != med.size() || r[k].node != med[k].node) {
                return invalid("latency: the timed runs ran different steps ({} and {} steps)",
                               med.size(), r.size());
            }
            v.push_back(r[k].ms);
        }
        med[k].ms = median(v);
    }
    NodeLatency r = attribute_steps(g, med, candidates);
    for (const StepTime& st : med) r.estimate_ms += st.ms;
    r.run_ms = median(run_ms);
    r.run_samples_ms = run_ms;
    return r;
}

Result<NodeLatency> measure_node_latency(const Model& model,
                                         const std::set<std::string>& candidates,
                                         const LatencyOptions& o) {
    LOWBIT_ASSIGN(std::vector<NodeLatency> r, measure_interleaved({&model}, {candidates}, o));
    return std::move(r.front());
}

Result<std::vector<NodeLatency>> measure_interleaved(
    const std::vector<const Model*>& models, const std::vector<std::set<std::string>>& candidates,
    const LatencyOptions& o) {
    if (o.runs < 1) return invalid("latency: {} runs: at least 1", o.runs);
    ExecutorOptions eo = o.exec;
    eo.step_times = true;
    // The timed rounds allocate nothing of their own: every step time goes into one array
    // reserved at the first timed round, and the steps' names are added after the last. (Building
    // StepTime names between runs fragmented the heap so that a run's output buffers landed on
    // fresh pages: the bundled INT8 model's runs took 7.1 ms instead of smoke's 6.7.)
    struct Timed {
        std::unique_ptr<Executor> ex;
        std::vector<Tensor> in;
        std::vector<double> step_ms;  // [round][step]
        size_t n_steps = 0;
        std::vector<double> run_ms;
    };
    std::vector<Timed> t(models.size());
    for (size_t i = 0; i < models.size(); ++i) {
        ExecutorOptions eo_i = eo;
        if (i < o.model_input_shapes.size()) eo_i.input_shapes = o.model_input_shapes[i];
        LOWBIT_ASSIGN(t[i].ex, Executor::create(*models[i], eo_i));
        const std::vector<TensorDesc>& wanted = t[i].ex->inputs();
        if (!o.inputs.empty()) {
            const std::string name = i < o.names.size()
                                         ? o.names[i]
                                         : fmt::format("model {} of {}", i + 1, models.size());
            if (o.inputs.size() != wanted.size()) {
                return invalid("{}: has {} input(s), {} input tensor(s) given", name,
                               wanted.size(), o.inputs.size());
            }
            for (size_t k = 0; k < wanted.size(); ++k) {
                const Tensor& x = o.inputs[k];
                if (x.dtype() != wanted[k].dtype || x.shape() != wanted[k].shape) {
                    return invalid(
                        "{}: input '{}' needs {} {}, the input given is {} {} (give one of that "
                        "shape)",
                        name, wanted[k].name, dtype_name(wanted[k].dtype),
                        shape_str(wanted[k].shape), dtype_name(x.dtype()), shape_str(x.shape()));
                }
            }
            t[i].in = o.inputs;  // shares the buffers (the executors only read them)
            continue;
        }
        for (const TensorDesc& d : wanted) {
            Tensor x(d.dtype, d.shape);
            // The values do not change which kernels run; a mid-grey image is a valid input.
            if (d.dtype == DType::Float32) {
                float* p = x.data<float>();
                std::fill(p, p + x.numel(), 0.5f);
            } else if (x.nbytes()) {
                std::fill(static_cast<char*>(x.raw()), static_cast<char*>(x.raw()) + x.nbytes(), 0);
            }
            t[i].in.push_back(std::move(x));
        }
    }
    for (int round = 0; round < o.warmup + o.runs; ++round) {
        for (size_t k = 0; k < t.size(); ++k) {
            Timed& m = t[(k + (o.rotate ? static_cast<size_t>(round) : 0)) % t.size()];
            for (int w = 0; w < o.turn_warmup && round >= o.warmup; ++w) {
                LOWBIT_TRY(m.ex->run(m.in).status());
            }
            const auto t0 = std::chrono::steady_clock::now();
            auto outputs = m.ex->run(m.in);
            const double ms =
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                    .count();
            LOWBIT_TRY(outputs.status());
            if (round < o.warmup) continue;
            // Every run of one executor times the same steps (the profile's array is sized once).
            const std::vector<double>& steps = m.ex->step_ms();
            if (m.run_ms.empty()) {
                m.n_steps = steps.size();
                m.step_ms.reserve(m.n_steps * static_cast<size_t>(o.runs));
                m.run_ms.reserve(static_cast<size_t>(o.runs));
            }
            m.step_ms.insert(m.step_ms.end(), steps.begin(), steps.end());
            m.run_ms.push_back(ms);
        }
        if (o.progress) o.progress->advance();
    }
    std::vector<NodeLatency> out;
    for (size_t i = 0; i < t.size(); ++i) {
        static const std::set<std::string> none;
        const std::set<std::string>& c = i < candidates.size() ? candidates[i] : none;
        // The names of the last run's steps (every run has the same), each round's times.
        const std::vector<StepTime> names = t[i].ex->step_times();
        std::vector<std::vector<StepTime>> runs(t[i].run_ms.size(), names);
        for (size_t r = 0; r < runs.size(); ++r) {
            for (size_t s = 0; s < runs[r].size(); ++s) {
                runs[r][s].ms = t[i].step_ms[r * t[i].n_steps + s];
            }
        }
        LOWBIT_ASSIGN(NodeLatency r, stepwise_latency(t[i].ex->graph(), runs, t[i].run_ms, c));
        out.push_back(std::move(r));
    }
    return out;
}

}  // namespace lowbit::pipeline
