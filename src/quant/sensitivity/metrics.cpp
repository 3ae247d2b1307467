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
// over images. Both values are reported; the metric picks the score. Row layout: (mse, 1 -
// cosine) per node, then the all-quantized pair.
class OutputMetric : public SummedMetric {
public:
    explicit OutputMetric(const MetricContext& ctx) : SummedMetric(ctx) {}

    Result<int64_t> prepare() override {
        sums_.nodes = ctx_.setup.size();
        sums_.width = 2;
        sums_.extra = 2;
        return Metric::prepare();
    }

    Status reference(const Sample&, const std::vector<Tensor>& outs) override {
        ref_ = outs;
        return Status::ok();
    }
    Status all_quantized(const Sample&, const std::vector<Tensor>& outs) override {
        const OutputError e = compare_outputs(outs, ref_);
        std::vector<double>& row = sums_.rows.back();
        row[sums_.nodes * 2] += e.mse;
        row[sums_.nodes * 2 + 1] += e.cosine;
        return Status::ok();
    }
    Status node(size_t k, const Sample&, const std::vector<Tensor>& outs) override {
        const OutputError e = compare_outputs(outs, ref_);
        std::vector<double>& row = sums_.rows.back();
        row[2 * k] += e.mse;
        row[2 * k + 1] += e.cosine;
        return Status::ok();
    }

private:
    std::vector<Tensor> ref_;  // the float32 outputs of the current image
};

// local-sqnr: SQNR (dB) of the node's own first output with the node quantized and float32
// inputs; score = -SQNR. Probes (probes.h) measure the nodes they can directly.
class LocalSqnrMetric : public SummedMetric {
public:
    explicit LocalSqnrMetric(const MetricContext& ctx) : SummedMetric(ctx) {}

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
        cur_.assign(ctx_.setup.size(), SumSquares());
        sums_.nodes = ctx_.setup.size();
        sums_.width = 2;
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
    void begin_image(int64_t i) override {
        sums_.images.push_back(i);
        cur_.assign(sums_.nodes, SumSquares());
    }
    void end_image() override {
        std::vector<double> row(2 * sums_.nodes);
        for (size_t k = 0; k < sums_.nodes; ++k) {
            row[2 * k] = cur_[k].signal;
            row[2 * k + 1] = cur_[k].noise;
        }
        sums_.rows.push_back(std::move(row));
    }
    Status reference(const Sample&, const std::vector<Tensor>&) override { return Status::ok(); }
    Status all_quantized(const Sample&, const std::vector<Tensor>&) override {
        return Status::ok();
    }
    Result<int64_t> measure_direct(int64_t image) override {
        if (!probes_) return int64_t{0};
        LOWBIT_TRY(probes_->run(image, cur_));
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
            cur_[k].signal += ss.signal;
            cur_[k].noise += ss.noise;
        }
        return Status::ok();
    }

private:
    std::unique_ptr<ProbeSet> probes_;
    std::vector<SumSquares> cur_;  // the current image's sums per node
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

std::vector<double> ImageSums::totals() const {
    std::vector<double> t(nodes * width + extra, 0.0);
    for (const std::vector<double>& row : rows) {
        for (size_t c = 0; c < t.size() && c < row.size(); ++c) t[c] += row[c];
    }
    return t;
}

Status SummedMetric::finish(int64_t images, nlohmann::ordered_json& reference) {
    scored_.assign(sums_.nodes, NodeSensitivity());
    return score_image_sums(ctx_.opts, sums_, images, reference, scored_);
}

Status SummedMetric::score(size_t k, NodeSensitivity& ns) {
    ns.metrics = scored_[k].metrics;
    ns.score = scored_[k].score;
    return Status::ok();
}

Status score_image_sums(const SensitivityOptions& opts, const ImageSums& sums, int64_t images,
                        nlohmann::ordered_json& reference, std::vector<NodeSensitivity>& nodes) {
    const std::vector<double> t = sums.totals();
    if (nodes.size() != sums.nodes || sums.width != 2) {
        return invalid("sensitivity sums: {} nodes x {} values for {} nodes", sums.nodes,
                       sums.width, nodes.size());
    }
    if (opts.metric == SensitivityMetric::LocalSqnr) {
        for (size_t k = 0; k < sums.nodes; ++k) {
            const double signal = t[2 * k], noise = t[2 * k + 1];
            // A node whose quantization changes nothing gets a capped 300 dB.
            double db = 300.0;
            if (noise > 0 && signal > 0) db = 10.0 * std::log10(signal / noise);
            if (signal == 0 && noise > 0) db = -300.0;
            db = std::clamp(db, -300.0, 300.0);
            nodes[k].metrics["local_sqnr_db"] = db;
            nodes[k].score = -db;
        }
        return Status::ok();
    }
    const double n_img = static_cast<double>(images);
    if (opts.metric == SensitivityMetric::Detection) {
        // Columns: (score part, box part); the score is their sum, mean over images.
        const double all_s = t[2 * sums.nodes] / n_img, all_b = t[2 * sums.nodes + 1] / n_img;
        if (opts.all_but_one) reference["all_quantized_detection_error"] = all_s + all_b;
        for (size_t k = 0; k < sums.nodes; ++k) {
            NodeSensitivity& ns = nodes[k];
            const double s = t[2 * k] / n_img, b = t[2 * k + 1] / n_img;
            ns.metrics["detection_error"] = s + b;
            ns.metrics["detection_score_error"] = s;
            ns.metrics["detection_box_error"] = b;
            if (opts.all_but_one) {
                ns.score = all_s + all_b - (s + b);
                ns.metrics["recovery"] = ns.score;
            } else {
                ns.score = s + b;
            }
        }
        return Status::ok();
    }
    if (opts.metric != SensitivityMetric::OutputMse && opts.metric != SensitivityMetric::Cosine) {
        return invalid("--metric {} is not summed over images", sensitivity_metric_name(opts.metric));
    }
    const bool cosine = opts.metric == SensitivityMetric::Cosine;
    const double all_mse = t[2 * sums.nodes] / n_img, all_cos = t[2 * sums.nodes + 1] / n_img;
    if (opts.all_but_one) {
        reference["all_quantized_output_mse"] = all_mse;
        reference["all_quantized_cosine"] = all_cos;
    }
    for (size_t k = 0; k < sums.nodes; ++k) {
        NodeSensitivity& ns = nodes[k];
        const double e_mse = t[2 * k] / n_img, e_cos = t[2 * k + 1] / n_img;
        ns.metrics["output_mse"] = e_mse;
        ns.metrics["cosine"] = e_cos;
        const double e = cosine ? e_cos : e_mse;
        if (opts.all_but_one) {
            const double all = cosine ? all_cos : all_mse;
            ns.score = all - e;
            ns.metrics["recovery"] = ns.score;
            ns.metrics["recovery_fraction"] = all > 0 ? ns.score / all : 0.0;
        } else {
            ns.score = e;
        }
    }
    return Status::ok();
}

std::unique_ptr<Metric> make_metric(SensitivityMetric m, const MetricContext& ctx) {
    switch (m) {
        case SensitivityMetric::OutputMse:
        case SensitivityMetric::Cosine: return std::make_unique<OutputMetric>(ctx);
        case SensitivityMetric::LocalSqnr: return std::make_unique<LocalSqnrMetric>(ctx);
        case SensitivityMetric::Map: return std::make_unique<MapMetric>(ctx);
        case SensitivityMetric::Detection: return make_detection_metric(ctx);
    }
    return nullptr;
}

}  // namespace lowbit::quant
