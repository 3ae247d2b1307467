#include "pipeline/quantize_variants.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>
#include <unordered_map>

#include "calib/calibrators.h"

namespace lowbit::pipeline {

namespace {

const char* mode_name(quant::QuantMode m) {
    return m == quant::QuantMode::Int8 ? "int8" : "fp8";
}

}  // namespace

std::map<std::string, Shape> calibration_input_shapes(const Model& model, const Shape& sample,
                                                      const std::map<std::string, Shape>& given) {
    std::map<std::string, Shape> shapes = given;
    for (const auto& vi : model.graph.inputs) {
        if (model.graph.initializer(vi.name) || shapes.count(vi.name)) continue;
        if (vi.fixed_shape()) continue;
        Shape s{vi.has_shape && vi.dims[0].is_fixed() ? vi.dims[0].value : 1};
        s.insert(s.end(), sample.begin(), sample.end());
        shapes[vi.name] = s;
    }
    return shapes;
}

Result<VariantsResult> quantize_variants(const Model& model, calib::CalibSource& source,
                                         const std::vector<quant::QuantizeOptions>& variants,
                                         const calib::CalibRunOptions& run) {
    if (variants.empty()) return invalid("no variants to quantize");
    LOWBIT_ASSIGN(Model m, quant::prepare_float_model(model));

    // Placement of every variant; a variant's own input shapes take precedence (they are part of
    // its options), the calibration sample shape fills the symbolic ones.
    std::vector<std::map<std::string, Shape>> shapes;
    std::vector<quant::Placement> placements;
    bool histogram = false;
    for (size_t v = 0; v < variants.size(); ++v) {
        const quant::QuantizeOptions& o = variants[v];
        if (o.ranges) return invalid("variant {} carries saved ranges; nothing to calibrate", v);
        shapes.push_back(calibration_input_shapes(m, source.sample_shape(), o.input_shapes));
        LOWBIT_ASSIGN(quant::TypeLookup types, quant::plan_types(m, shapes.back()));
        LOWBIT_ASSIGN(quant::Placement p, quant::place_qdq(m.graph, types, o.placement));
        placements.push_back(std::move(p));
        histogram = histogram || calib::needs_histogram(o.method);
    }
    for (size_t v = 1; v < shapes.size(); ++v) {
        if (shapes[v] != shapes[0]) {
            return invalid("variants {} and 0 run the model at different input shapes", v);
        }
    }

    // The union of the calibrated tensors, each one its own calibration group.
    calib::CalibRequest req;
    req.histogram = histogram;
    std::unordered_map<std::string, size_t> slot;
    for (const quant::Placement& pl : placements) {
        for (const quant::ActivationQdq& a : pl.activations) {
            if (a.constant || slot.count(a.tensor)) continue;
            slot[a.tensor] = req.groups.size();
            req.groups.push_back({a.tensor});
        }
    }
    LOWBIT_ASSIGN(calib::CalibResult cr, calib::calibrate(m, source, req, run));
    const std::set<std::string> unobserved(cr.unobserved.begin(), cr.unobserved.end());

    VariantsResult out;
    out.samples = cr.samples;
    out.calib_seconds = cr.seconds;
    out.calibrated_tensors = req.groups.size();
    out.warnings = cr.warnings;
    for (size_t v = 0; v < variants.size(); ++v) {
        const quant::QuantizeOptions& o = variants[v];
        const quant::Placement& pl = placements[v];
        calib::CalibConfig cfg;
        cfg.method = o.method;
        cfg.percentile = o.percentile;
        cfg.target = o.placement.mode;
        calib::RangesFile rf;
        rf.method = calib::calib_method_name(o.method);
        rf.mode = mode_name(o.placement.mode);
        rf.percentile = o.method == calib::CalibMethod::Percentile ? o.percentile : 0;
        rf.samples = cr.samples;
        rf.model = o.model_name;

        // Pool each Concat group as quantize_model() does: members of one placement group share
        // statistics, every other activation stands alone.
        std::map<int, std::vector<const quant::ActivationQdq*>> grouped;
        std::vector<std::vector<const quant::ActivationQdq*>> pools;
        for (const quant::ActivationQdq& a : pl.activations) {
            if (a.constant) continue;
            if (a.group >= 0)
                grouped[a.group].push_back(&a);
            else
                pools.push_back({&a});
        }
        for (auto& [g, members] : grouped) pools.push_back(std::move(members));
        std::vector<std::string> notes;
        for (const auto& pool : pools) {
            calib::TensorStats pooled(histogram);
            for (const quant::ActivationQdq* a : pool) {
                pooled.merge(cr.stats[slot.at(a->tensor)]);
                if (unobserved.count(a->tensor)) {
                    notes.push_back(fmt::format(
                        "tensor '{}' was never produced at run time (folded constant?); its "
                        "scale falls back to 1",
                        a->tensor));
                }
            }
            calib::TensorRange tr;
            tr.amax = calib::compute_amax(pooled, cfg);
            tr.min = pooled.min();
            tr.max = pooled.max();
            tr.count = pooled.count();
            for (const quant::ActivationQdq* a : pool) {
                tr.group = a->group;
                rf.tensors[a->tensor] = tr;
            }
        }

        quant::QuantizeOptions q = o;
        q.input_shapes = shapes[v];
        q.ranges = std::move(rf);
        auto res = quant::quantize_model(m, nullptr, q);
        if (!res) return res.status().with_context(fmt::format("variant {}", v));
        res->samples = cr.samples;
        res->calib_seconds = cr.seconds;
        res->notes.insert(res->notes.begin(), notes.begin(), notes.end());
        out.variants.push_back(std::move(res).value());
    }
    return out;
}

}  // namespace lowbit::pipeline
