#include "eval/evaluator.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>
#include <unordered_map>

#include "core/half.h"
#include "core/progress.h"
#include "data/letterbox.h"
#include "eval/class_map.h"
#include "runtime/model_info.h"

namespace lowbit {

namespace {

namespace fs = std::filesystem;

struct EvalImage {
    int64_t id;
    std::string path;
};

Result<std::vector<EvalImage>> image_files(const CocoDataset& gt, const EvalOptions& opts,
                                           const std::vector<int64_t>& ids) {
    std::unordered_map<int64_t, const CocoImage*> by_id;
    for (const CocoImage& im : gt.images) by_id.emplace(im.id, &im);
    std::vector<EvalImage> out;
    for (int64_t id : ids) {
        auto it = by_id.find(id);
        if (it == by_id.end()) {
            return invalid("image id {} is not in {}", id, opts.ann_path);
        }
        if (it->second->file_name.empty()) {
            return invalid("{}: image id {} has no file_name", opts.ann_path, id);
        }
        fs::path p = fs::path(opts.images_dir) / it->second->file_name;
        std::error_code ec;
        if (!fs::is_regular_file(p, ec)) {
            return io_error("image {} (id {} in {}) does not exist", p.string(), id, opts.ann_path);
        }
        out.push_back({id, p.string()});
    }
    return out;
}

// Copies float32 NCHW images into the executor's input dtype.
Tensor make_input(const TensorDesc& desc, const std::vector<float>& nchw) {
    Tensor t(desc.dtype, desc.shape);
    if (desc.dtype == DType::Float16) {
        uint16_t* p = t.data<uint16_t>();
        for (size_t i = 0; i < nchw.size(); ++i) p[i] = float_to_half(nchw[i]);
    } else {
        std::memcpy(t.raw(), nchw.data(), nchw.size() * sizeof(float));
    }
    return t;
}

// Item `i` of a batched output [B, ...] as its own tensor [1, ...].
Tensor batch_item(const Tensor& out, int64_t i) {
    if (out.shape().empty() || out.shape()[0] == 1) return out;
    Shape shape = out.shape();
    const int64_t b = shape[0];
    shape[0] = 1;
    Tensor t(out.dtype(), shape);
    const size_t bytes = out.nbytes() / static_cast<size_t>(b);
    std::memcpy(t.raw(), static_cast<const char*>(out.raw()) + static_cast<size_t>(i) * bytes,
                bytes);
    return t;
}

}  // namespace

Result<std::vector<int64_t>> select_image_ids(const CocoDataset& gt, const EvalOptions& opts) {
    std::vector<int64_t> ids = opts.image_ids;
    if (ids.empty()) {
        // The seed: getImgIds(), sorted ascending, first max_images (§5.2).
        for (const CocoImage& im : gt.images) ids.push_back(im.id);
        std::sort(ids.begin(), ids.end());
        ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    }
    if (opts.max_images > 0 && ids.size() > static_cast<size_t>(opts.max_images)) {
        ids.resize(static_cast<size_t>(opts.max_images));
    }
    if (ids.empty()) return invalid("{}: no images to evaluate", opts.ann_path);
    return ids;
}

std::pair<size_t, size_t> shard_block(size_t n, int index, int count) {
    if (count <= 1) return {0, n};
    const size_t c = static_cast<size_t>(count), i = static_cast<size_t>(index);
    return {n * i / c, n * (i + 1) / c};
}

Result<EvalImagesPart> evaluate_images(Executor& ex, const Model& model, const CocoDataset& gt,
                                       const EvalOptions& opts) {
    if (ex.inputs().empty()) return invalid("the model has no inputs");
    if (ex.outputs().empty()) return invalid("the model has no outputs");
    const TensorDesc& in = ex.inputs()[0];
    const int64_t batch = std::max(1, opts.batch);
    const Shape want = {batch, 3, opts.imgsz, opts.imgsz};
    if (in.shape != want) {
        return invalid("model input '{}' is {} but evaluation needs {} (--imgsz {}, --batch {})",
                       in.name, shape_str(in.shape), shape_str(want), opts.imgsz, batch);
    }
    if (in.dtype != DType::Float32 && in.dtype != DType::Float16) {
        return unsupported("model input '{}' has dtype {}; expected float32 or float16", in.name,
                           dtype_name(in.dtype));
    }
    if (opts.shard_count < 1 || opts.shard_index < 0 || opts.shard_index >= opts.shard_count) {
        return invalid("shard {}/{}: expected 0 <= I < N", opts.shard_index, opts.shard_count);
    }

    LOWBIT_ASSIGN(std::vector<int64_t> all_ids, select_image_ids(gt, opts));
    const auto [begin, end] = shard_block(all_ids.size(), opts.shard_index, opts.shard_count);
    EvalImagesPart res;
    res.image_ids.assign(all_ids.begin() + static_cast<std::ptrdiff_t>(begin),
                         all_ids.begin() + static_cast<std::ptrdiff_t>(end));
    LOWBIT_ASSIGN(std::vector<EvalImage> images, image_files(gt, opts, res.image_ids));
    res.output_name = ex.outputs()[0].name;
    const std::vector<std::string> names = eval::model_class_names(model);

    // Warmup on zeros, before the image loop (seed-spec §5.4).
    const size_t per_image = static_cast<size_t>(3) * opts.imgsz * opts.imgsz;
    std::vector<float> nchw(per_image * static_cast<size_t>(batch), 0.0f);
    for (int i = 0; i < opts.warmup_runs; ++i) {
        auto r = ex.run({make_input(in, nchw)});
        if (!r) return r.status().with_context("warmup run");
    }

    eval::DetectionDecoder decoder;
    bool layout_known = false;
    res.seconds.reserve(images.size());
    std::unique_ptr<Progress> progress;
    if (opts.progress) {
        progress = std::make_unique<Progress>("eval", static_cast<int64_t>(images.size()), "img");
    }

    std::vector<Letterbox> boxes(static_cast<size_t>(batch));
    for (size_t first = 0; first < images.size(); first += static_cast<size_t>(batch)) {
        const size_t n = std::min(images.size() - first, static_cast<size_t>(batch));
        for (size_t k = 0; k < n; ++k) {
            LOWBIT_ASSIGN(boxes[k], load_letterboxed(images[first + k].path, opts.imgsz,
                                                     nchw.data() + k * per_image));
        }
        std::fill(nchw.begin() + static_cast<std::ptrdiff_t>(n * per_image), nchw.end(), 0.0f);
        Tensor input = make_input(in, nchw);
        auto t0 = std::chrono::steady_clock::now();
        auto outs = ex.run({input});
        auto t1 = std::chrono::steady_clock::now();
        if (!outs) {
            return outs.status().with_context(
                n == 1 ? images[first].path
                       : fmt::format("{} (batch of {})", images[first].path, n));
        }
        const double per_image_s = std::chrono::duration<double>(t1 - t0).count() / batch;
        const Tensor& batched = (*outs)[0];
        if (batch > 1 && (batched.shape().empty() || batched.shape()[0] != batch)) {
            return invalid(
                "output '{}' is {} for a batch of {}: its first dimension is not the "
                "batch, so the model cannot evaluate in batches",
                res.output_name, shape_str(batched.shape()), batch);
        }

        for (size_t k = 0; k < n; ++k) {
            const EvalImage& im = images[first + k];
            res.seconds.push_back(per_image_s);
            const Tensor out = batch_item(batched, static_cast<int64_t>(k));
            if (!layout_known) {
                // Decided once, from the first image, and kept for the run.
                LOWBIT_ASSIGN(decoder, eval::DetectionDecoder::create(
                                           res.output_name, out, opts.imgsz, opts.decoder_options(),
                                           gt.categories, names));
                res.layout = decoder.layout();
                res.class_map = decoder.class_map().how;
                if (decoder.found_probabilities()) {
                    res.notes.push_back(fmt::format(
                        "the class channels of '{}' are already probabilities (all in [0,1]); "
                        "using them as scores without a sigmoid (--scores logits forces one, "
                        "as the seed does)",
                        res.output_name));
                }
                res.sigmoid_applied = decoder.sigmoid_applied();
                layout_known = true;
            }

            auto dropped = decoder.append(out, boxes[k], im.id, res.detections);
            if (!dropped) return dropped.status().with_context(im.path);
            res.dropped_unmapped += *dropped;
            if (progress) progress->advance();
        }
    }
    if (progress) progress->finish();
    return res;
}

Result<EvalResult> summarize_evaluation(const CocoDataset& gt, std::vector<EvalImagesPart> parts,
                                        int skip_latency, int n_threads) {
    if (parts.empty()) return invalid("no evaluation parts to summarize");
    EvalResult res;
    // What the first image decided (the layout is decided once per run).
    const EvalImagesPart* first = nullptr;
    for (const EvalImagesPart& p : parts) {
        if (!first && !p.image_ids.empty()) first = &p;
    }
    if (!first) first = &parts.front();
    res.layout = first->layout;
    res.output_name = first->output_name;
    res.class_map = first->class_map;
    res.sigmoid_applied = first->sigmoid_applied;
    res.notes = first->notes;
    std::vector<double> seconds;
    CocoEvalOptions co;
    co.n_threads = n_threads;
    for (EvalImagesPart& p : parts) {
        co.img_ids.insert(co.img_ids.end(), p.image_ids.begin(), p.image_ids.end());
        seconds.insert(seconds.end(), p.seconds.begin(), p.seconds.end());
        for (CocoAnnotation& d : p.detections) {
            d.id = static_cast<int64_t>(res.detections.size()) + 1;
            res.detections.push_back(d);
        }
        res.dropped_unmapped += p.dropped_unmapped;
    }
    res.num_images = static_cast<int64_t>(co.img_ids.size());
    if (res.dropped_unmapped > 0) {
        res.notes.push_back(
            fmt::format("{} detections had a class without a category ({}) and "
                        "were dropped",
                        res.dropped_unmapped, res.class_map));
    }
    LOWBIT_ASSIGN(res.coco, coco_evaluate(gt, res.detections, co));
    LOWBIT_ASSIGN(res.bootstrap,
                  bootstrap_map(gt, res.detections, co, kBootstrapResamples, kBootstrapSeed));
    res.latency = latency_stats(std::move(seconds), skip_latency);
    return res;
}

Result<EvalResult> evaluate_detector(Executor& ex, const Model& model, const EvalOptions& opts) {
    LOWBIT_ASSIGN(CocoDataset gt, load_coco_gt(opts.ann_path));
    std::vector<EvalImagesPart> parts(1);
    LOWBIT_ASSIGN(parts[0], evaluate_images(ex, model, gt, opts));
    return summarize_evaluation(gt, std::move(parts), opts.skip_latency, opts.n_threads);
}

nlohmann::ordered_json eval_metrics_json(const EvalRunInfo& info, const EvalResult& r) {
    nlohmann::ordered_json j;
    j["onnx_path"] = info.onnx_path;
    j["data_root"] = info.data_root;
    j["instances"] = info.instances;
    j["images_dir"] = info.images_dir;
    j["providers"] = info.providers;
    j["imgsz"] = info.imgsz;
    j["max_images"] = info.max_images;
    j["warmup_runs"] = info.warmup_runs;
    j["skip_latency"] = info.skip_latency;
    if (info.batch > 1) j["batch"] = info.batch;
    j["conf"] = info.conf;
    j["iou"] = info.iou;
    j["max_det"] = info.max_det;
    j["pre_nms_topk"] = info.pre_nms_topk;
    const auto& s = r.coco.stats;
    nlohmann::ordered_json m;
    m["mAP_50_95"] = s[0];
    m["mAP_50"] = s[1];
    m["mAP_75"] = s[2];
    m["mAP_small"] = s[3];
    m["mAP_medium"] = s[4];
    m["mAP_large"] = s[5];
    m["num_images"] = r.num_images;
    m["num_detections"] = r.detections.size();
    m["stats"] = s;
    j["metrics"] = m;
    j["latency"] = latency_json(r.latency);
    j["output"] = r.output_name;
    j["head"] = r.layout.describe();
    j["sigmoid_applied"] = r.sigmoid_applied;
    j["class_map"] = r.class_map;
    j["backend"] = "cpu";
    j["threads"] = info.threads;
    j["kernels"] = to_json(info.kernels);
    j["notes"] = r.notes;
    if (!r.bootstrap.values.empty()) {
        // Paired with another metrics.json of the same images, resample by resample (compare).
        j["bootstrap"] = {{"what", "mAP50-95 over images resampled with replacement"},
                          {"resamples", r.bootstrap.resamples},
                          {"seed", r.bootstrap.seed},
                          {"image_ids", r.coco.img_ids},
                          {"map50_95_ci95", {r.bootstrap.lo, r.bootstrap.hi}},
                          {"map50_95", r.bootstrap.values}};
    }
    j["lowbit_version"] = LOWBIT_VERSION;
    return j;
}

}  // namespace lowbit
