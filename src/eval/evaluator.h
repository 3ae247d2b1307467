// COCO evaluation of a detector: the seed's eval_yolov10m_onnx_coco.py as a library call
// (research/seed-spec.md §5). Per image: letterbox -> executor (only this is timed) -> decode ->
// NMS -> un-letterbox + clip -> COCO results; then pycocotools-exact COCOeval on the evaluated
// image ids, and latency statistics.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/status.h"
#include "data/coco.h"
#include "eval/cocoeval.h"
#include "eval/decode.h"
#include "eval/detection_decoder.h"
#include "eval/latency.h"
#include "ir/graph.h"
#include "runtime/executor.h"

namespace lowbit {

struct EvalOptions {
    std::string ann_path;    // COCO instances JSON
    std::string images_dir;  // folder holding the images' file_name
    // Images: `image_ids` in the given order when non-empty, else the annotation file's ids in
    // ascending order; then the first `max_images` (<= 0: all).
    std::vector<int64_t> image_ids;
    int max_images = 100;
    int imgsz = 640;
    DecodeOptions decode;
    HeadKind head = HeadKind::Auto;
    ScoreMode scores = ScoreMode::Auto;
    std::string class_map_file;
    int warmup_runs = 0;
    int skip_latency = 0;
    int n_threads = 0;
    // Images per run: the executor's input is [batch,3,imgsz,imgsz] (a last partial batch is
    // padded with zero images, whose outputs are dropped). Each image's latency sample is its
    // batch's run time divided by `batch`.
    int batch = 1;
    bool progress = true;  // progress line on stderr when it is a terminal
    // Shard `shard_index` of `shard_count`: the selected images split into that many contiguous
    // blocks, this one evaluated (evaluate_images); 1 shard: every image.
    int shard_index = 0;
    int shard_count = 1;

    // What the detection decoder takes of these options.
    eval::DetectionDecoderOptions decoder_options() const {
        return {decode, head, scores, class_map_file};
    }
};

struct EvalResult {
    CocoEvalResult coco;
    std::vector<CocoAnnotation> detections;  // COCO results, image order then score order
    LatencyStats latency;
    HeadLayout layout;
    std::string output_name;
    std::string class_map;  // how classes were mapped to category ids
    bool sigmoid_applied = true;
    int64_t num_images = 0;          // requested images
    int64_t dropped_unmapped = 0;    // detections whose class has no category
    std::vector<std::string> notes;  // decisions worth telling the user (printed by the CLI)
    // mAP50-95 over kBootstrapResamples resamples of the images (seed kBootstrapSeed): its 95 %
    // interval, and every resample's value, which compare pairs with another model's.
    BootstrapResult bootstrap;
};

inline constexpr int kBootstrapResamples = 1000;
inline constexpr uint64_t kBootstrapSeed = 0;

// What inference over a set of images produced, before COCOeval: the part of an evaluation that
// shards split (`lowbit eval --shard`) and `lowbit merge` concatenates in image order.
struct EvalImagesPart {
    std::vector<int64_t> image_ids;          // the images of this part, in evaluation order
    std::vector<CocoAnnotation> detections;  // image order then score order; id = index + 1
    std::vector<double> seconds;             // per image, inference only
    HeadLayout layout;
    std::string output_name;
    std::string class_map;
    bool sigmoid_applied = true;
    int64_t dropped_unmapped = 0;
    std::vector<std::string> notes;
};

// The images an evaluation selects (EvalOptions::image_ids / max_images), in order, and of
// those the contiguous block [begin, end) of shard `index` of `count`.
Result<std::vector<int64_t>> select_image_ids(const CocoDataset& gt, const EvalOptions& opts);
std::pair<size_t, size_t> shard_block(size_t n, int index, int count);

// Inference and decoding over the images of opts' shard (all images with one shard).
Result<EvalImagesPart> evaluate_images(Executor& ex, const Model& model, const CocoDataset& gt,
                                       const EvalOptions& opts);

// COCOeval and latency of the parts, concatenated in the order given (detection ids renumbered
// 1..n, as one part over all images would have them): what one process computes.
Result<EvalResult> summarize_evaluation(const CocoDataset& gt, std::vector<EvalImagesPart> parts,
                                        int skip_latency, int n_threads);

// Evaluates `model` (already planned in `ex`, input [batch,3,imgsz,imgsz] float32/float16):
// evaluate_images then summarize_evaluation. Errors name the image, annotation file or output
// tensor involved.
Result<EvalResult> evaluate_detector(Executor& ex, const Model& model, const EvalOptions& opts);

// Fields of metrics.json that describe the invocation (seed schema, §5.10).
struct EvalRunInfo {
    std::string onnx_path;
    std::string data_root;
    std::string instances;
    std::string images_dir;
    std::vector<std::string> providers;
    int imgsz = 640;
    int max_images = 100;
    int warmup_runs = 0;
    int skip_latency = 0;
    int batch = 1;
    double conf = 0.001;
    double iou = 0.7;
    int max_det = 300;
    int pre_nms_topk = 30000;
    int threads = 0;
    KernelReport kernels;  // which kernels ran the model (runtime/kernel_report.h)
};

// metrics.json: the seed's keys in the seed's order (metrics.stats adds all 12 COCO stats),
// followed by lowbit's own fields (head, class map, notes, version).
nlohmann::ordered_json eval_metrics_json(const EvalRunInfo& info, const EvalResult& r);

}  // namespace lowbit
