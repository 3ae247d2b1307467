// The sweep's measurement as a small interface: the per-image loop (sweep.cpp) runs the passes
// and hands their outputs to a Metric, which owns its accumulation and its final score. The
// implementations (metrics.cpp): output-mse and cosine (graph outputs against float32),
// local-sqnr (the node's own output; its fast paths are probes.h), detection (decoded
// detections, detection_metric.cpp), map (mAP on a validation
// subset, decoded by eval::DetectionDecoder as `lowbit eval` decodes). A new metric implements
// this interface and gets a SensitivityMetric value, a name and a case in make_metric().
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "calib/calib_source.h"
#include "core/status.h"
#include "core/tensor.h"
#include "data/letterbox.h"
#include "quant/sensitivity/sensitivity.h"
#include "quant/sensitivity/setup.h"

namespace lowbit::quant {

// One compared image: the model input, and for map its letterbox, COCO id and file.
struct Sample {
    Tensor input;
    Letterbox lb;
    int64_t image_id = 0;
    std::string path;
};

// What a metric reads of the sweep. All references outlive the metric.
struct MetricContext {
    SweepSetup& setup;
    calib::CalibSource& source;
    const SensitivityOptions& opts;
    SensitivityReport& report;  // notes and cost fields a metric fills in while preparing
};

class Metric {
public:
    explicit Metric(const MetricContext& ctx) : ctx_(ctx) {}
    virtual ~Metric() = default;
    Metric(const Metric&) = delete;
    Metric& operator=(const Metric&) = delete;

    // True when the metric reads each node's own output computed from float32 inputs (the node
    // run alone, its first output fetched) rather than the graph outputs of a quantized cone.
    // Such a metric has no cones: --all-but-one and --naive do not apply, and a tensor read by
    // several nodes is fake-quantized once per image.
    virtual bool local() const { return false; }
    // Rejects options the metric cannot measure; called before any work.
    virtual Status check(const SensitivityOptions& opts) const { return Status::ok(); }

    // After setup (the metric is made before it, to check() the options): sizes the metric's
    // per-node accumulators, plans what it needs (local-sqnr: probes; map: the validation
    // subset) and returns the number of compared images (this default: the first opts.images
    // of the calibration source).
    virtual Result<int64_t> prepare();
    // Nodes that quantize their own weights (no constant variant needed), by graph node index;
    // empty: none.
    virtual std::vector<char> own_weights() const { return {}; }
    // Compared image i (default: calibration sample i).
    virtual Status load(int64_t i, Sample& smp);

    // Around each compared image's measurements (image index i).
    virtual void begin_image(int64_t i) {}
    virtual void end_image() {}
    // A metric summed over images: its per-image values (ImageSums); nullptr otherwise.
    virtual const ImageSums* image_sums() const { return nullptr; }

    // Per image, in this order: the float32 pass; with --all-but-one the all-quantized pass;
    // measure_direct() (nodes the metric measures without a run through the executor, right
    // after the float32 pass; returns how many); then node(k) for every other measured node k.
    virtual Status reference(const Sample& smp, const std::vector<Tensor>& outs) = 0;
    virtual Status all_quantized(const Sample& smp, const std::vector<Tensor>& outs) = 0;
    virtual Result<int64_t> measure_direct(int64_t image) { return int64_t{0}; }
    virtual bool measured_directly(size_t k) const { return false; }
    // `outs`: the graph outputs of the quantized run, or for a local metric the node's first
    // output (as stored).
    virtual Status node(size_t k, const Sample& smp, const std::vector<Tensor>& outs) = 0;

    // After the loop over `images` images: the reference values (SensitivityReport::reference)
    // first, then each node's metrics and score.
    virtual Status finish(int64_t images, nlohmann::ordered_json& reference) = 0;
    virtual Status score(size_t k, NodeSensitivity& ns) = 0;

protected:
    MetricContext ctx_;
};

// A metric summed over images (output-mse/cosine, local-sqnr, detection): each compared image
// adds one row of sums_ (begin_image: a row of zeros, sized by sums_.nodes/width/extra, which
// prepare() sets); finish() and score() score the column totals (score_image_sums).
class SummedMetric : public Metric {
public:
    using Metric::Metric;
    void begin_image(int64_t i) override {
        sums_.images.push_back(i);
        sums_.rows.emplace_back(sums_.nodes * sums_.width + sums_.extra, 0.0);
    }
    const ImageSums* image_sums() const override { return &sums_; }
    Status finish(int64_t images, nlohmann::ordered_json& reference) override;
    Status score(size_t k, NodeSensitivity& ns) override;

protected:
    ImageSums sums_;

private:
    std::vector<NodeSensitivity> scored_;
};

// Scores of a metric summed over images from the column totals of its ImageSums over `images`
// images: the reference values, then nodes[k]'s metrics and score for every measured node k.
// The metrics' own finish()/score() go through here, as does merge_sensitivity().
Status score_image_sums(const SensitivityOptions& opts, const ImageSums& sums, int64_t images,
                        nlohmann::ordered_json& reference, std::vector<NodeSensitivity>& nodes);

std::unique_ptr<Metric> make_metric(SensitivityMetric m, const MetricContext& ctx);
// detection (detection_metric.cpp).
std::unique_ptr<Metric> make_detection_metric(const MetricContext& ctx);

}  // namespace lowbit::quant
