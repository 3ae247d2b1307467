#include "runtime/memory_plan.h"

#include <algorithm>
#include <numeric>
#include <unordered_map>
#include <unordered_set>

#include "ir/graph.h"
#include "runtime/kernel.h"
#include "runtime/lifetimes.h"
#include "runtime/program.h"

namespace lowbit {

std::vector<MemorySlot> plan_memory(const std::vector<MemoryRequest>& reqs, size_t* total_bytes) {
    constexpr size_t kAlign = 64;
    std::vector<size_t> idx(reqs.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(),
                     [&](size_t a, size_t b) { return reqs[a].bytes > reqs[b].bytes; });
    std::vector<MemorySlot> slots(reqs.size(), MemorySlot{0});
    struct Placed {
        size_t offset, end;
        int first, last;
    };
    std::vector<Placed> placed;
    size_t total = 0;
    for (size_t i : idx) {
        const MemoryRequest& r = reqs[i];
        const size_t size = std::max<size_t>((r.bytes + kAlign - 1) / kAlign * kAlign, kAlign);
        // Intervals already taken during r's lifetime, by offset.
        std::vector<std::pair<size_t, size_t>> busy;
        for (const Placed& p : placed) {
            if (p.first <= r.last_step && r.first_step <= p.last) busy.emplace_back(p.offset, p.end);
        }
        std::sort(busy.begin(), busy.end());
        size_t offset = 0;
        for (const auto& [b, e] : busy) {
            if (offset + size <= b) break;
            offset = std::max(offset, e);
        }
        slots[i].offset = offset;
        placed.push_back({offset, offset + size, r.first_step, r.last_step});
        total = std::max(total, offset + size);
    }
    *total_bytes = total;
    return slots;
}

}  // namespace lowbit

namespace lowbit {

namespace {

// Who produces each tensor of a program (step, output index) and how many steps read it.
struct StepIndex {
    std::unordered_map<std::string, std::pair<size_t, size_t>> producer;
    std::unordered_map<std::string, int> reads;
};

StepIndex index_steps(const Program& p) {
    StepIndex ix;
    for (size_t si = 0; si < p.steps.size(); ++si) {
        const Step& st = p.steps[si];
        for (size_t o = 0; o < st.out.size(); ++o) {
            if (!st.out[o].empty()) ix.producer[st.out[o]] = {si, o};
        }
        for (const auto& in : st.in) {
            if (!in.empty()) ++ix.reads[in];
        }
    }
    return ix;
}

}  // namespace

// YOLO's C2f: cv1 -> Split; the producer writes each part while its output is in cache. The
// parts can then take part in in-place concatenation like any other output.
void fold_splits(Program& p, const Graph& g, const std::unordered_set<std::string>& graph_outputs) {
    auto [producer, reads] = index_steps(p);
    std::vector<bool> drop(p.steps.size(), false);
    for (size_t k = 0; k < p.steps.size(); ++k) {
        Step& split = p.steps[k];
        if (!split.fast || split.node == kNoNode || g.nodes[split.node].op_type != "Split" ||
            split.in.empty() || split.in[0].empty() || p.layout_of(split.in[0]) != Layout::Nhwc) {
            continue;
        }
        const std::string x = split.in[0];
        auto pr = producer.find(x);
        if (pr == producer.end() || reads[x] != 1 || graph_outputs.count(x)) continue;
        Step& prod = p.steps[pr->second.first];
        if (!prod.fast) continue;
        int64_t c0 = 0;
        bool first = true, folded = true;
        for (size_t o = 0; o < split.out.size(); ++o) {
            const std::string& part = split.out[o];
            const int64_t c = part.empty() ? 0 : p.stored.at(part).shape[1];
            if (!part.empty()) {
                const bool ok = prod.fast->add_channel_range_output(pr->second.second,
                                                                    prod.out.size(), c0, c0 + c);
                if (!ok) {
                    // Producers accept all valid ranges or none.
                    LOWBIT_CHECK(first, "{}: channel range output refused half way", prod.label);
                    folded = false;
                    break;
                }
                prod.out.push_back(part);
                first = false;
            }
            c0 += c;
        }
        if (!folded || first) continue;
        prod.fast->drop_dense(pr->second.second);
        prod.out[pr->second.second].clear();
        drop[k] = true;
    }
    std::vector<Step> kept;
    for (size_t k = 0; k < p.steps.size(); ++k) {
        if (!drop[k]) kept.push_back(std::move(p.steps[k]));
    }
    p.steps = std::move(kept);
}

namespace {

// The walk both Concat plans share: each input of an NHWC channel Concat whose producer (an
// earlier fast step) accepts to write it straight into its slice of the Concat's buffer. Plain
// Concats (no fused QuantizeLinear) take float slices; the fused int8 Concat -> QuantizeLinear
// step takes codes, for the inputs it would quantize itself (quantizes_input > 0), at its scale.
void plan_concat_parts(Program& p, const Graph& g,
                       const std::unordered_set<std::string>& graph_outputs, bool quantized) {
    auto [producer, reads] = index_steps(p);
    for (size_t k = 0; k < p.steps.size(); ++k) {
        Step& cat = p.steps[k];
        if (!cat.fast || cat.node == kNoNode || g.nodes[cat.node].op_type != "Concat" ||
            cat.fused.empty() != !quantized || cat.out.size() != 1 ||
            p.layout_of(cat.out[0]) != Layout::Nhwc) {
            continue;
        }
        const std::string buffer = cat.out[0];
        const int64_t total = p.stored.at(buffer).shape[1];
        const std::vector<std::string> ins = cat.in;
        int64_t offset = 0;
        for (size_t j = 0; j < ins.size(); ++j) {
            const std::string& in = ins[j];
            auto st = p.stored.find(in);
            if (st == p.stored.end()) break;  // constants: leave the rest to the copy
            const int64_t c = st->second.shape[1];
            const float scale = quantized ? cat.fast->quantizes_input(j) : 0.0f;
            auto pr = producer.find(in);
            if ((!quantized || scale > 0.0f) && pr != producer.end() && pr->second.first < k) {
                Step& prod = p.steps[pr->second.first];
                const auto uses = std::count(ins.begin(), ins.end(), in);
                const bool keep = reads[in] > uses || graph_outputs.count(in) > 0;
                const size_t at = prod.out.size();
                const bool added =
                    prod.fast &&
                    (quantized ? prod.fast->add_quantized_concat_slice(pr->second.second, at,
                                                                       offset, total, scale, keep)
                               : prod.fast->add_concat_slice(pr->second.second, at, offset, total,
                                                             keep));
                if (added) {
                    prod.out.push_back(buffer);
                    if (!keep) prod.out[pr->second.second].clear();
                    const bool in_place = cat.fast->set_input_in_place(j);
                    // The quantizing step must skip the part: the producer no longer writes the
                    // float input it would read.
                    LOWBIT_CHECK(in_place || !quantized, "{}: refused a part it quantizes",
                                 cat.label);
                    cat.in[j].clear();
                }
            }
            offset += c;
        }
    }
}

}  // namespace

// Only for NHWC concats along channels in the fused program; the hooked program keeps every
// tensor for observers.
void plan_in_place_concat(Program& p, const Graph& g,
                          const std::unordered_set<std::string>& graph_outputs) {
    plan_concat_parts(p, g, graph_outputs, false);
}

void plan_quantized_concat_slices(Program& p, const Graph& g,
                                  const std::unordered_set<std::string>& graph_outputs) {
    plan_concat_parts(p, g, graph_outputs, true);
}

namespace {

// Removes the steps marked in `drop` (now aliases), counted as kernel "alias".
void drop_steps(Program& p, const std::vector<bool>& drop) {
    std::vector<Step> kept;
    for (size_t k = 0; k < p.steps.size(); ++k) {
        if (!drop[k]) {
            kept.push_back(std::move(p.steps[k]));
        } else {
            ++p.report.kernels["alias"];
            --p.report.kernels[p.steps[k].kernel];
        }
    }
    p.steps = std::move(kept);
}

}  // namespace

void alias_copy_steps(Program& p, const std::vector<std::unique_ptr<Kernel>>& kernels) {
    std::vector<bool> drop(p.steps.size(), false);
    for (size_t k = 0; k < p.steps.size(); ++k) {
        const Step& st = p.steps[k];
        if (st.fast || st.node == kNoNode || st.node >= kernels.size() || !kernels[st.node] ||
            st.in.empty() || st.in[0].empty()) {
            continue;
        }
        const std::vector<int64_t> runs = kernels[st.node]->output_runs_of_input();
        const auto in = p.stored.find(st.in[0]);
        if (runs.size() != st.out.size() || in == p.stored.end() ||
            in->second.layout != Layout::Plain) {
            continue;
        }
        bool ok = true;
        for (const std::string& o : st.out) {
            const auto out = o.empty() ? p.stored.end() : p.stored.find(o);
            ok = ok && (o.empty() || (out != p.stored.end() && out->second.layout == Layout::Plain &&
                                      out->second.dtype == in->second.dtype));
        }
        if (!ok) continue;
        auto r = p.aliases.find(st.in[0]);
        const TensorAlias base = r == p.aliases.end() ? TensorAlias{st.in[0], 0} : r->second;
        const size_t elem = dtype_size(in->second.dtype);
        for (size_t o = 0; o < st.out.size(); ++o) {
            if (st.out[o].empty()) continue;
            p.aliases[st.out[o]] = {base.root, base.offset + static_cast<size_t>(runs[o]) * elem};
        }
        drop[k] = true;
    }
    drop_steps(p, drop);
}

void alias_concat_inputs(Program& p, const Graph& g,
                         const std::unordered_set<std::string>& graph_inputs) {
    auto root = [&](const std::string& name) {
        auto a = p.aliases.find(name);
        return a == p.aliases.end() ? TensorAlias{name, 0} : a->second;
    };
    // The roots some step writes (through any of their names). Steps run in order, so the
    // writers of a step's inputs all come before it.
    std::unordered_set<std::string> written;
    for (const Step& st : p.steps) {
        for (const auto& o : st.out) {
            if (!o.empty()) written.insert(root(o).root);
        }
    }
    std::vector<bool> drop(p.steps.size(), false);
    for (size_t k = 0; k < p.steps.size(); ++k) {
        const Step& st = p.steps[k];
        if (st.fast || st.node == kNoNode || g.nodes[st.node].op_type != "Concat" ||
            st.out.size() != 1 || st.in.empty()) {
            continue;
        }
        const std::string& cat = st.out[0];
        const auto out = p.stored.find(cat);
        if (out == p.stored.end() || out->second.layout != Layout::Plain || p.aliases.count(cat)) {
            continue;
        }
        const Shape& shape = out->second.shape;
        const auto rank = static_cast<int64_t>(shape.size());
        int64_t axis = g.nodes[st.node].attr_int("axis", 0);
        if (axis < 0) axis += rank;
        if (axis < 0 || axis >= rank) continue;
        bool ok = true;
        for (int64_t d = 0; d < axis; ++d) ok = ok && shape[static_cast<size_t>(d)] == 1;
        // Each input: the whole of a root that steps write, plain, once.
        std::vector<std::pair<std::string, size_t>> placed;  // root, offset in the output
        size_t at = 0;
        for (const std::string& x : st.in) {
            if (!ok) break;
            const auto s = x.empty() ? p.stored.end() : p.stored.find(x);
            const TensorAlias r = root(x);
            const auto rs = p.stored.find(r.root);
            ok = s != p.stored.end() && rs != p.stored.end() && r.offset == 0 &&
                 s->second.layout == Layout::Plain && rs->second.layout == Layout::Plain &&
                 s->second.dtype == out->second.dtype &&
                 shape_numel(rs->second.shape) == shape_numel(s->second.shape) &&
                 !graph_inputs.count(r.root) && r.root != cat && written.count(r.root);
            for (const auto& [prev, off] : placed) ok = ok && prev != r.root;
            if (ok) placed.emplace_back(r.root, at);
            if (s != p.stored.end()) {
                at += static_cast<size_t>(shape_numel(s->second.shape)) *
                      dtype_size(s->second.dtype);
            }
        }
        if (!ok || at != static_cast<size_t>(shape_numel(shape)) * dtype_size(out->second.dtype)) {
            continue;
        }
        for (const auto& [r, off] : placed) {
            for (auto& [name, a] : p.aliases) {
                if (a.root == r) a = {cat, a.offset + off};
            }
            p.aliases[r] = {cat, off};
        }
        written.insert(cat);
        drop[k] = true;
    }
    drop_steps(p, drop);
}

void plan_program_memory(Program& p, const std::map<std::string, Lifetime>& lifetimes, bool reuse,
                         int end) {
    std::vector<MemoryRequest> reqs;
    for (const auto& [name, span] : lifetimes) {
        const Stored& d = p.stored.at(name);
        reqs.push_back({static_cast<size_t>(shape_numel(d.shape)) * dtype_size(d.dtype),
                        reuse ? span.first : -1, reuse ? std::max(span.first, span.last) : end});
    }
    p.slots = plan_memory(reqs, &p.arena_bytes);
    size_t k = 0;
    for (const auto& [name, span] : lifetimes) p.slot_of[name] = k++;
    for (const auto& [alias, a] : p.aliases) p.slot_of[alias] = p.slot_of.at(a.root);
    p.arena = std::make_shared<Buffer>(p.arena_bytes);
}

}  // namespace lowbit
