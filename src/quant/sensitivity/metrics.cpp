// The sweep's metrics (metric.h): output-mse and cosine (one accumulation of both, each ranking
// by its own), local-sqnr and map.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "data/coco.h"
#include "eval/cocoeval.h"
#include "eval/detection_decoder.h"
#include "quant/sensitivity/metric.h"
#include "quant/sensitivity/probes.h"

namespace lowbit::quant {

Result<int64_t> Metric::prepare() {
    return std::min<int64_t>(ctx_.opts.images, ctx_.source.size());
}

Status Metric::load(int64_t i, Sample& smp) {
    smp.input = Tensor(DType::Float32, ctx_.setup.input.shape);
    return ctx_.source.read(i, smp.input.data<float>());
}

namespace {

struct OutputError {
    double mse = 0;
    double cosine = 0;  // 1 - cosine similarity
};

// Float outputs of `a` against `ref`, concatenated.
OutputError compare_outputs(const std::vector<Tensor>& a, const std::vector<Tensor>& ref) {
    double sq = 0, dot = 0, na = 0, nb = 0;
    int64_t count = 0;
    for (size_t k = 0; k < ref.size() && k < a.size(); ++k) {
        if (ref[k].dtype() != DType::Float32 || a[k].dtype() != DType::Float32) continue;
        const float* x = a[k].data<float>();
        const float* y = ref[k].data<float>();
        const int64_t n = ref[k].numel();
        for (int64_t i = 0; i < n; ++i) {
            const double d = static_cast<double>(x[i]) - y[i];
            sq += d * d;
            dot += static_cast<double>(x[i]) * y[i];
            na += static_cast<double>(x[i]) * x[i];
            nb += static_cast<double>(y[i]) * y[i];
        }
        count += n;
    }
    OutputError e;
    e.mse = count ? sq / static_cast<double>(count) : 0.0;
    if (na > 0 && nb > 0)
        e.cosine = 1.0 - dot / std::sqrt(na * nb);
    else
        e.cosine = na == nb ? 0.0 : 1.0;
    return e;
}

// output-mse and cosine: the concatenated float graph outputs against the float32 pass, mean
// over images. Both values are reported; `use_cosine` picks the score.
class OutputMetric : public Metric {
public:
    OutputMetric(const MetricContext& ctx, bool use_cosine) : Metric(ctx), cosine_(use_cosine) {}

    Result<int64_t> prepare() override {
        mse_.assign(ctx_.setup.size(), 0.0);
        cos_.assign(ctx_.setup.size(), 0.0);
        return Metric::prepare();
    }

    Status reference(const Sample&, const std::vector<Tensor>& outs) override {
        ref_ = outs;
        return Status::ok();
    }
    Status all_quantized(const Sample&, const std::vector<Tensor>& outs) override {
        const OutputError e = compare_outputs(outs, ref_);
        all_mse_ += e.mse;
        all_cos_ += e.cosine;
        return Status::ok();
    }
    Status node(size_t k, const Sample&, const std::vector<Tensor>& outs) override {
        const OutputError e = compare_outputs(outs, ref_);
        mse_[k] += e.mse;
        cos_[k] += e.cosine;
        return Status::ok();
    }
    Status finish(int64_t images, nlohmann::ordered_json& reference) override {
        n_img_ = static_cast<double>(images);
        if (ctx_.opts.all_but_one) {
            reference["all_quantized_output_mse"] = all_mse_ / n_img_;
            reference["all_quantized_cosine"] = all_cos_ / n_img_;
        }
        return Status::ok();
    }
    Status score(size_t k, NodeSensitivity& ns) override {
        const double e_mse = mse_[k] / n_img_, e_cos = cos_[k] / n_img_;
        ns.metrics["output_mse"] = e_mse;
        ns.metrics["cosine"] = e_cos;
        const double e = cosine_ ? e_cos : e_mse;
        if (ctx_.opts.all_but_one) {
            const double all = cosine_ ? all_cos_ / n_img_ : all_mse_ / n_img_;
            ns.score = all - e;
            ns.metrics["recovery"] = ns.score;
            ns.metrics["recovery_fraction"] = all > 0 ? ns.score / all : 0.0;
        } else {
            ns.score = e;
        }
        return Status::ok();
    }

private:
    bool cosine_;
    std::vector<Tensor> ref_;  // the float32 outputs of the current image
    std::vector<double> mse_, cos_;
    double all_mse_ = 0, all_cos_ = 0;
    double n_img_ = 1;
};

// local-sqnr: SQNR (dB) of the node's own first output with the node quantized and float32
// inputs; score = -SQNR. Probes (probes.h) measure the nodes they can directly.
class LocalSqnrMetric : public Metric {
public:
    explicit LocalSqnrMetric(const MetricContext& ctx) : Metric(ctx) {}

    bool local() const override { return true; }
    Status check(const SensitivityOptions& opts) const override {
        if (opts.all_but_one) {
            return invalid(
                "--all-but-one measures the model outputs; local-sqnr is a per-node signal (use "
                "output-mse, cosine or map with --all-but-one)");
        }
        if (opts.naive) {
            return invalid("--naive compares cone runs with full passes; local-sqnr has no cones");
        }
        return Status::ok();
    }
    Result<int64_t> prepare() override {
        sums_.assign(ctx_.setup.size(), SumSquares());
        if (ctx_.opts.local_probes) {
            LOWBIT_ASSIGN(probes_,
                          ProbeSet::plan(ctx_.setup, ctx_.opts.n_threads, ctx_.report.notes));
            ctx_.report.cost.quant_kernel_nodes = probes_->conv_nodes();
        }
        return Metric::prepare();
    }
    std::vector<char> own_weights() const override {
        return probes_ ? probes_->own_weights() : std::vector<char>();
    }
    Status reference(const Sample&, const std::vector<Tensor>&) override { return Status::ok(); }
    Status all_quantized(const Sample&, const std::vector<Tensor>&) override {
        return Status::ok();
    }
    Result<int64_t> measure_direct(int64_t image) override {
        if (!probes_) return int64_t{0};
        LOWBIT_TRY(probes_->run(image, sums_));
        return static_cast<int64_t>(probes_->size());
    }
    bool measured_directly(size_t k) const override { return probes_ && probes_->has(k); }
    Status node(size_t k, const Sample&, const std::vector<Tensor>& outs) override {
        // Both as stored (same layout): the sums are over all elements.
        LOWBIT_ASSIGN(Tensor y,
                      ctx_.setup.ex->tensor(ctx_.setup.first_output[k], TensorView::Stored));
        const Tensor& yq = outs.back();
        if (y.dtype() == DType::Float32) {
            const SumSquares ss = sum_squares(y.data<float>(), yq.data<float>(), y.numel());
            sums_[k].signal += ss.signal;
            sums_[k].noise += ss.noise;
        }
        return Status::ok();
    }
    Status finish(int64_t, nlohmann::ordered_json&) override { return Status::ok(); }
    Status score(size_t k, NodeSensitivity& ns) override {
        const double signal = sums_[k].signal, noise = sums_[k].noise;
        // A node whose quantization changes nothing gets a capped 300 dB.
        double db = 300.0;
        if (noise > 0 && signal > 0) db = 10.0 * std::log10(signal / noise);
        if (signal == 0 && noise > 0) db = -300.0;
        db = std::clamp(db, -300.0, 300.0);
        ns.metrics["local_sqnr_db"] = db;
        ns.score = -db;
        return Status::ok();
    }

private:
    std::unique_ptr<ProbeSet> probes_;
    std::vector<SumSquares> sums_;
};

// map: mAP50-95 on a validation subset (the annotation file's first images by id), detections
// decoded as `lowbit eval` decodes them; score = the drop from float32 (all-but-one: the mAP
// recovered over the all-quantized model).
class MapMetric : public Metric {
public:
    explicit MapMetric(const MetricContext& ctx) : Metric(ctx) {}

    Result<int64_t> prepare() override {
        dets_.assign(ctx_.setup.size(), {});
        const EvalOptions& ev = ctx_.opts.eval;
        const TensorDesc& in = ctx_.setup.input;
        if (in.shape.size() != 4 || in.shape[2] != in.shape[3]) {
            return invalid("map needs a square image input; '{}' is {}", in.name,
                           shape_str(in.shape));
        }
        imgsz_ = static_cast<int>(in.shape[2]);
        LOWBIT_ASSIGN(gt_, load_coco_gt(ev.ann_path));
        for (const CocoImage& im : gt_.images) ids_.push_back(im.id);
        std::sort(ids_.begin(), ids_.end());
        if (ev.max_images > 0 && ids_.size() > static_cast<size_t>(ev.max_images)) {
            ids_.resize(static_cast<size_t>(ev.max_images));
        }
        if (ids_.empty()) return invalid("{}: no images", ev.ann_path);
        return static_cast<int64_t>(ids_.size());
    }
    Status load(int64_t i, Sample& smp) override {
        smp.input = Tensor(DType::Float32, ctx_.setup.input.shape);
        const int64_t id = ids_[static_cast<size_t>(i)];
        const CocoImage* im = nullptr;
        for (const CocoImage& c : gt_.images) {
            if (c.id == id) im = &c;
        }
        smp.path = (std::filesystem::path(ctx_.opts.eval.images_dir) / im->file_name).string();
        LOWBIT_ASSIGN(smp.lb, load_letterboxed(smp.path, imgsz_, smp.input.data<float>()));
        smp.image_id = id;
        return Status::ok();
    }
    Status reference(const Sample& smp, const std::vector<Tensor>& outs) override {
        if (!ready_) {
            // Decided once, from the first image, as `lowbit eval` decides it.
            LOWBIT_ASSIGN(decoder_, eval::DetectionDecoder::create(
                                        ctx_.setup.ex->outputs()[0].name, outs[0], imgsz_,
                                        ctx_.opts.eval.decoder_options(), gt_.categories,
                                        eval::model_class_names(ctx_.setup.model)));
            ready_ = true;
        }
        return append(outs, smp, dets_fp32_);
    }
    Status all_quantized(const Sample& smp, const std::vector<Tensor>& outs) override {
        return append(outs, smp, dets_allq_);
    }
    Status node(size_t k, const Sample& smp, const std::vector<Tensor>& outs) override {
        return append(outs, smp, dets_[k]);
    }
    Status finish(int64_t, nlohmann::ordered_json& reference) override {
        co_.img_ids = ids_;
        co_.n_threads = ctx_.opts.n_threads;
        LOWBIT_ASSIGN(CocoEvalResult r, coco_evaluate(gt_, dets_fp32_, co_));
        map_fp32_ = r.stats[0];
        reference["fp32_map50_95"] = map_fp32_;
        reference["fp32_map50"] = r.stats[1];
        if (ctx_.opts.all_but_one) {
            LOWBIT_ASSIGN(CocoEvalResult q, coco_evaluate(gt_, dets_allq_, co_));
            map_allq_ = q.stats[0];
            reference["all_quantized_map50_95"] = map_allq_;
        }
        return Status::ok();
    }
    Status score(size_t k, NodeSensitivity& ns) override {
        LOWBIT_ASSIGN(CocoEvalResult r, coco_evaluate(gt_, dets_[k], co_));
        ns.metrics["map50_95"] = r.stats[0];
        ns.metrics["map50"] = r.stats[1];
        if (ctx_.opts.all_but_one) {
            ns.score = r.stats[0] - map_allq_;
            ns.metrics["recovery"] = ns.score;
        } else {
            ns.score = map_fp32_ - r.stats[0];
            ns.metrics["map_drop"] = ns.score;
        }
        return Status::ok();
    }

private:
    // Unmapped classes are dropped (their count is eval's note, not a sensitivity result).
    Status append(const std::vector<Tensor>& outs, const Sample& smp,
                  std::vector<CocoAnnotation>& dets) const {
        auto dropped = decoder_.append(outs[0], smp.lb, smp.image_id, dets);
        return dropped ? Status::ok() : dropped.status().with_context(smp.path);
    }

    int imgsz_ = 0;
    CocoDataset gt_;
    std::vector<int64_t> ids_;  // the validation subset, ascending
    eval::DetectionDecoder decoder_;
    bool ready_ = false;
    std::vector<std::vector<CocoAnnotation>> dets_;  // per measured node
    std::vector<CocoAnnotation> dets_fp32_, dets_allq_;
    CocoEvalOptions co_;
    double map_fp32_ = 0, map_allq_ = 0;
};

}  // namespace

std::unique_ptr<Metric> make_metric(SensitivityMetric m, const MetricContext& ctx) {
    switch (m) {
        case SensitivityMetric::OutputMse: return std::make_unique<OutputMetric>(ctx, false);
        case SensitivityMetric::Cosine: return std::make_unique<OutputMetric>(ctx, true);
        case SensitivityMetric::LocalSqnr: return std::make_unique<LocalSqnrMetric>(ctx);
        case SensitivityMetric::Map: return std::make_unique<MapMetric>(ctx);
    }
    return nullptr;
}

}  // namespace lowbit::quant
