// detection: the task-aware metric (eval/detection_error.h) -- the graph's first output decoded
// (boxes after the DFL expectation, class scores after the sigmoid, or the end-to-end rows
// matched) and compared with the float32 pass, squared differences weighted by confidence.
// Summed over images like output-mse; row layout: (score part, box part) per node, then the
// all-quantized pair.
#include <fmt/format.h>

#include "eval/detection_error.h"
#include "quant/sensitivity/metric.h"

namespace lowbit::quant {

namespace {

class DetectionMetric : public SummedMetric {
public:
    explicit DetectionMetric(const MetricContext& ctx) : SummedMetric(ctx) {}

    Result<int64_t> prepare() override {
        const TensorDesc& in = ctx_.setup.input;
        if (in.shape.size() != 4 || in.shape[2] != in.shape[3]) {
            return invalid("--metric detection needs a square image input; '{}' is {}", in.name,
                           shape_str(in.shape));
        }
        imgsz_ = static_cast<int>(in.shape[2]);
        sums_.nodes = ctx_.setup.size();
        sums_.width = 2;
        sums_.extra = 2;
        return Metric::prepare();
    }

    Status reference(const Sample&, const std::vector<Tensor>& outs) override {
        if (outs.empty()) return invalid("--metric detection: the model has no output");
        if (!ready_) {
            const std::string name = ctx_.setup.ex->outputs()[0].name;
            LOWBIT_ASSIGN(
                cmp_, eval::DetectionComparator::create(name, outs[0], imgsz_, ctx_.opts.eval.head,
                                                        ctx_.opts.eval.scores, n_classes()));
            ctx_.report.notes.push_back(
                fmt::format("detection metric on output '{}': {}", name, cmp_.layout().describe()));
            ready_ = true;
        }
        return cmp_.set_reference(outs[0]);
    }
    Status all_quantized(const Sample&, const std::vector<Tensor>& outs) override {
        return add(sums_.nodes, outs);
    }
    Status node(size_t k, const Sample&, const std::vector<Tensor>& outs) override {
        return add(k, outs);
    }

private:
    // The class count from the model's Ultralytics names (0: unknown; 144/84 channels decide).
    int n_classes() const {
        return static_cast<int>(eval::model_class_names(ctx_.setup.model).size());
    }
    Status add(size_t k, const std::vector<Tensor>& outs) {
        LOWBIT_ASSIGN(eval::DetectionError e, cmp_.compare(outs[0]));
        std::vector<double>& row = sums_.rows.back();
        row[2 * k] += e.score;
        row[2 * k + 1] += e.box;
        return Status::ok();
    }

    int imgsz_ = 0;
    bool ready_ = false;
    eval::DetectionComparator cmp_;
};

}  // namespace

std::unique_ptr<Metric> make_detection_metric(const MetricContext& ctx) {
    return std::make_unique<DetectionMetric>(ctx);
}

}  // namespace lowbit::quant
