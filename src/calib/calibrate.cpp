#include "calib/calibrate.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <unordered_map>
#include <unordered_set>

#include "core/half.h"
#include "core/progress.h"

namespace lowbit::calib {

namespace {

using Clock = std::chrono::steady_clock;

void observe(TensorStats& s, const Tensor& t) {
    if (t.dtype() == DType::Float32)
        s.add(t.data<float>(), t.numel());
    else if (t.dtype() == DType::Float16)
        s.add_half(t.data<uint16_t>(), t.numel());
}

}  // namespace

Result<CalibResult> calibrate(const Model& model, CalibSource& source, const CalibRequest& req,
                              const CalibRunOptions& opts) {
    const Graph& g = model.graph;
    const ValueInfo* input = nullptr;
    for (const auto& vi : g.inputs) {
        if (g.initializer(vi.name)) continue;
        if (input) {
            return invalid(
                "calibration feeds models with one input; this model has '{}' and "
                "'{}'",
                input->name, vi.name);
        }
        input = &vi;
    }
    if (!input) return invalid("the model has no runtime input to calibrate with");
    if (input->dtype != DType::Float32 && input->dtype != DType::Float16) {
        return invalid("input '{}' is {}; calibration data is float", input->name,
                       dtype_name(input->dtype));
    }
    const Shape& sample = source.sample_shape();
    if (input->has_shape && input->dims.size() != sample.size() + 1) {
        return invalid(
            "input '{}' has shape {}, calibration samples have shape {} (expected the "
            "input shape without its batch axis)",
            input->name, input->shape_str(), shape_str(sample));
    }
    for (size_t i = 0; input->has_shape && i < sample.size(); ++i) {
        const Dim& d = input->dims[i + 1];
        if (d.is_fixed() && d.value != sample[i]) {
            return invalid("input '{}' has shape {}, calibration samples have shape {}",
                           input->name, input->shape_str(), shape_str(sample));
        }
    }
    const bool fixed_batch = input->has_shape && input->dims[0].is_fixed();
    int64_t batch = fixed_batch ? input->dims[0].value : std::max<int64_t>(1, opts.batch);
    int64_t total = source.size();
    if (opts.max_samples > 0) total = std::min(total, opts.max_samples);
    if (total < batch) batch = fixed_batch ? batch : total;
    if (total < batch) {
        return invalid("the model's batch is {} but only {} calibration samples are given", batch,
                       total);
    }

    std::unordered_map<std::string, size_t> group_of;
    for (size_t gi = 0; gi < req.groups.size(); ++gi) {
        for (const auto& t : req.groups[gi]) group_of[t] = gi;
    }
    CalibResult res;
    res.stats.assign(req.groups.size(), TensorStats(req.histogram));
    std::unordered_set<std::string> seen;
    const std::unordered_set<std::string> taps(req.taps.begin(), req.taps.end());
    Status tap_status = Status::ok();

    auto make_executor = [&](int64_t b) -> Result<std::unique_ptr<Executor>> {
        ExecutorOptions eo;
        eo.n_threads = opts.n_threads;
        eo.profile = opts.profile;
        eo.conv_winograd = opts.conv_winograd;
        // Ranges are measured on the float simulation of whatever Q/DQ the model holds.
        eo.lowp_kernels = false;
        Shape s{b};
        s.insert(s.end(), sample.begin(), sample.end());
        eo.input_shapes[input->name] = s;
        auto ex = Executor::create(model, eo);
        if (!ex) return ex.status().with_context("planning the model for calibration");
        // Only the requested tensors are converted to plain layout and handed over.
        std::vector<std::string> wanted;
        for (const auto& [name, gi] : group_of) wanted.push_back(name);
        for (const auto& name : taps) {
            if (!group_of.count(name)) wanted.push_back(name);
        }
        (*ex)->set_observer(
            [&](size_t, const Node&, const std::string& name, const Tensor& t) {
                if (taps.count(name) && req.tap && tap_status.is_ok()) {
                    tap_status = req.tap(name, t);
                }
                auto it = group_of.find(name);
                if (it == group_of.end()) return;
                observe(res.stats[it->second], t);
                seen.insert(name);
            },
            wanted);
        return ex;
    };

    const auto t0 = Clock::now();
    Progress progress("calibrate", total, "img", opts.progress && Progress::stderr_is_terminal());
    const int64_t per_sample = shape_numel(sample);
    std::unique_ptr<Executor> ex, tail_ex;
    const auto in_group = group_of.find(input->name);
    for (int64_t start = 0; start + (fixed_batch ? batch : 1) <= total; start += batch) {
        const int64_t b = std::min(batch, total - start);
        std::unique_ptr<Executor>& e = b == batch ? ex : tail_ex;
        if (!e) {
            LOWBIT_ASSIGN(e, make_executor(b));
        }
        Shape s{b};
        s.insert(s.end(), sample.begin(), sample.end());
        Tensor feed(DType::Float32, s);
        for (int64_t k = 0; k < b; ++k) {
            LOWBIT_TRY(source.read(start + k, feed.data<float>() + k * per_sample));
        }
        if (in_group != group_of.end()) {
            observe(res.stats[in_group->second], feed);
            seen.insert(input->name);
        }
        if (taps.count(input->name) && req.tap) LOWBIT_TRY(req.tap(input->name, feed));
        if (input->dtype == DType::Float16) {
            Tensor h(DType::Float16, s);
            for (int64_t i = 0; i < feed.numel(); ++i) {
                h.data<uint16_t>()[i] = float_to_half(feed.data<float>()[i]);
            }
            feed = h;
        }
        auto out = e->run({feed});
        if (!out) return out.status().with_context(fmt::format("calibration sample {}", start));
        LOWBIT_TRY(tap_status);
        res.samples += b;
        progress.advance(b);
    }
    progress.finish();
    res.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    for (const auto& [name, gi] : group_of) {
        if (!seen.count(name)) res.unobserved.push_back(name);
    }
    std::sort(res.unobserved.begin(), res.unobserved.end());
    // Group names in request order, for the messages.
    auto group_name = [&](size_t gi) {
        const auto& names = req.groups[gi];
        return names.size() == 1 ? fmt::format("'{}'", names[0])
                                 : fmt::format("'{}' (and {} tensors pooled with it)", names[0],
                                               names.size() - 1);
    };
    std::vector<std::string> bad;
    for (size_t gi = 0; gi < res.stats.size(); ++gi) {
        const TensorStats& s = res.stats[gi];
        if (s.nonfinite() > 0) {
            bad.push_back(fmt::format("{}: {} of {} values", group_name(gi), s.nonfinite(),
                                      s.count() + s.nonfinite()));
        } else if (s.count() > 0 && s.min() == s.max()) {
            res.warnings.push_back(fmt::format(
                "tensor {} is constant ({} on all {} calibration samples): its range has zero "
                "width; check the calibration data (all-zero or constant images?)",
                group_name(gi), s.min(), res.samples));
        }
    }
    if (!bad.empty()) {
        std::string list;
        for (size_t i = 0; i < bad.size() && i < 5; ++i) list += "\n  " + bad[i];
        if (bad.size() > 5) list += fmt::format("\n  ... and {} more", bad.size() - 5);
        return invalid(
            "{} calibrated tensor(s) took NaN or infinite values on {}:{}\nno quantization range "
            "can be calibrated from them; check the calibration data and the model",
            bad.size(), source.describe(), list);
    }
    return res;
}

}  // namespace lowbit::calib
