#include "cli/pipeline_steps.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_set>

#include "cli/common.h"
#include "core/fs.h"
#include "data/image_list.h"
#include "eval/cocoeval.h"
#include "onnx/model_io.h"

namespace lowbit::cli {

namespace fs = std::filesystem;

void add_calib_input_options(CLI::App* sub, CalibInputOptions& o, bool modelopt_spelling) {
    sub->add_option(modelopt_spelling ? "--calib,--calibration_data_path" : "--calib", o.npy,
                    "Calibration .npy [N, C, H, W] float32 (from `lowbit calib`)");
    sub->add_option("--calib-list", o.list,
                    "Text file of calibration image paths, relative to the list's folder "
                    "(letterboxed like `lowbit calib`)");
    sub->add_option("--calib-images", o.images,
                    "Calibration images: files or folders (letterboxed like `lowbit calib`)");
}

Result<std::unique_ptr<calib::CalibSource>> open_calib_input(const CalibInputOptions& o) {
    const int sources = !o.npy.empty() + !o.list.empty() + !o.images.empty();
    if (sources > 1) return invalid("give one of --calib, --calib-list, --calib-images");
    if (!o.npy.empty()) return calib::open_npy_source(o.npy);
    if (sources == 0) return std::unique_ptr<calib::CalibSource>();
    auto imgs = !o.list.empty() ? read_image_list(o.list) : calib::collect_images(o.images);
    if (!imgs) return imgs.status();
    return calib::open_image_source(std::move(imgs).value(), o.imgsz);
}

void add_calib_method_options(CLI::App* sub, CalibMethodOptions& o) {
    sub->add_option("--calibration-method,--calibration_method", o.method,
                    "mse (the threshold minimising the tensor's quantization error on the target "
                    "grid), entropy (TensorRT's KL calibrator; clips YOLO heads), max or "
                    "percentile")
        ->capture_default_str();
    sub->add_option("--percentile", o.percentile, "Percentile for --calibration-method percentile")
        ->capture_default_str();
}

Result<std::pair<calib::CalibMethod, double>> parse_calib_method_options(
    const CalibMethodOptions& o) {
    LOWBIT_ASSIGN(calib::CalibMethod m, calib::parse_calib_method(o.method));
    if (o.percentile <= 0 || o.percentile > 100) {
        return invalid("--percentile {} is outside (0, 100]", o.percentile);
    }
    return std::make_pair(m, o.percentile);
}

void add_placement_options(CLI::App* sub, PlacementCliOptions& o) {
    sub->add_option("--exclude-nodes-file", o.exclude_files,
                    "File of node names to keep in high precision (exact names, one per line, "
                    "'#' comments)");
    sub->add_option("--exclude", o.exclude,
                    "Regex of node names to keep in high precision, matched at the start of the "
                    "name (Python re.match); repeatable")
        ->expected(1)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    sub->add_option("--nodes_to_exclude", o.nodes_to_exclude,
                    "ModelOpt spelling: one or more --exclude regexes");
    sub->add_option("--op-types,--op_types_to_quantize", o.op_types,
                    "INT8: quantize every node of these op types (no placement rules); FP8: "
                    "restrict placement to these (subset of Conv Gemm MatMul Add)");
    sub->add_option("--exclude-op-types,--op_types_to_exclude", o.exclude_op_types,
                    "Keep every node of these op types in high precision");
    sub->add_flag("--modelopt-parity", o.modelopt_parity,
                  "Place Q/DQ exactly as ModelOpt (no SiLU residual rule: both inputs of YOLO "
                  "residual Adds get Q/DQ)");
    sub->add_flag("--disable-mha-qdq,--disable_mha_qdq", o.disable_mha_qdq,
                  "Keep both MatMuls of attention blocks in high precision");
}

Status apply_placement_options(const PlacementCliOptions& o, quant::PlacementOptions& p) {
    for (const auto& f : o.exclude_files) {
        LOWBIT_ASSIGN(std::vector<std::string> names, read_node_list(f));
        p.exclude_names.insert(p.exclude_names.end(), names.begin(), names.end());
    }
    p.exclude_regex = o.exclude;
    p.exclude_regex.insert(p.exclude_regex.end(), o.nodes_to_exclude.begin(),
                           o.nodes_to_exclude.end());
    LOWBIT_TRY(quant::validate_regexes(p.exclude_regex));
    p.op_types = o.op_types;
    p.exclude_op_types = o.exclude_op_types;
    p.modelopt_parity = o.modelopt_parity;
    p.disable_mha_qdq = o.disable_mha_qdq;
    return Status::ok();
}

const ValueInfo* image_input(const Model& m) {
    for (const ValueInfo& vi : m.graph.inputs) {
        if (!m.graph.initializer(vi.name)) return &vi;
    }
    return nullptr;
}

int64_t image_size_for(const Model& m, int64_t requested) {
    if (requested > 0) return requested;
    const ValueInfo* in = image_input(m);
    if (in && in->has_shape && in->dims.size() == 4 && in->dims[2].is_fixed() &&
        in->dims[3].is_fixed() && in->dims[2].value == in->dims[3].value) {
        return in->dims[2].value;
    }
    return 640;
}

Result<quant::QuantMode> parse_quant_mode(const std::string& s) {
    if (s == "int8") return quant::QuantMode::Int8;
    if (s == "fp8") return quant::QuantMode::Fp8;
    if (s == "int4") {
        return unsupported(
            "--mode int4: lowbit quantizes INT8 and FP8 (ModelOpt's INT4 targets Gemm/MatMul "
            "weights only and leaves YOLO unquantized, research/modelopt.md §5)");
    }
    return invalid("--mode '{}': expected int8 or fp8", s);
}

Result<DType> parse_high_precision(const std::string& s) {
    if (s == "fp16") return DType::Float16;
    if (s == "fp32") return DType::Float32;
    return invalid("--high-precision '{}': expected fp32 or fp16{}", s,
                   s == "bf16" ? " (bf16 is not supported)" : "");
}

Result<std::vector<std::string>> read_node_list(const std::string& path) {
    std::ifstream in(path);
    if (!in) return io_error("cannot open exclusion file '{}'", path);
    std::vector<std::string> names;
    std::string line;
    while (std::getline(in, line)) {
        auto hash = line.find('#');
        if (hash != std::string::npos) line.erase(hash);
        const char* ws = " \t\r\n\v\f";
        auto b = line.find_first_not_of(ws);
        if (b == std::string::npos) continue;
        auto e = line.find_last_not_of(ws);
        names.push_back(line.substr(b, e - b + 1));
    }
    return names;
}

void add_eval_data_options(CLI::App* sub, EvalCliOptions& o) {
    sub->add_option("--data-root,--data", o.data_root,
                    "COCO folder: annotations/instances_val2017.json + val2017/ (default: the "
                    "bundled val set)");
    sub->add_option("--ann,--instances", o.ann, "Annotation file (overrides --data-root)");
    sub->add_option("--images,--images-dir", o.images, "Image folder (overrides --data-root)");
    sub->add_option("--image-ids-list", o.image_ids_list,
                    "Evaluate these image ids (one per line, file order) instead of the first N");
    sub->add_option("--max-images", o.max_images,
                    "First N image ids in ascending order (<= 0: all)")
        ->capture_default_str();
}

void add_eval_decode_options(CLI::App* sub, EvalCliOptions& o) {
    sub->add_option("--conf", o.conf, "Score threshold before NMS (inclusive)")
        ->capture_default_str();
    sub->add_option("--iou", o.iou, "NMS IoU threshold")->capture_default_str();
    sub->add_option("--max-det", o.max_det, "Detections per image after NMS")
        ->capture_default_str();
    sub->add_option("--pre-nms-topk", o.pre_nms_topk, "Candidates kept before NMS")
        ->capture_default_str();
    sub->add_option("--warmup-runs", o.warmup_runs, "Untimed runs on zeros first")
        ->check(CLI::NonNegativeNumber);
    sub->add_option("--skip-latency", o.skip_latency, "Drop the first N latency samples")
        ->check(CLI::NonNegativeNumber);
    sub->add_option("--head", o.head, "Output layout: auto, dfl, decoded or e2e")
        ->capture_default_str();
    sub->add_option("--scores", o.scores,
                    "Class channels: auto (detect probabilities), logits (sigmoid) or probs")
        ->capture_default_str();
    sub->add_option("--class-map", o.class_map,
                    "Class -> category id: JSON array/object or one id per line")
        ->check(CLI::ExistingFile);
}

namespace {

// One id per line; blank lines and '#' comments skipped (seed-spec §5.2).
Result<std::vector<int64_t>> read_image_ids(const std::string& path) {
    LOWBIT_ASSIGN(std::string text, read_file(path));
    std::vector<int64_t> ids;
    std::istringstream in(text);
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
        ++n;
        size_t b = line.find_first_not_of(" \t\r");
        if (b == std::string::npos || line[b] == '#') continue;
        try {
            size_t used = 0;
            std::string tok = line.substr(b, line.find_last_not_of(" \t\r") - b + 1);
            ids.push_back(std::stoll(tok, &used));
            if (used != tok.size()) throw std::invalid_argument(tok);
        } catch (const std::exception&) {
            return invalid("{}:{}: expected an image id", path, n);
        }
    }
    if (ids.empty()) return invalid("{}: no image ids", path);
    return ids;
}

}  // namespace

Status resolve_eval_data(EvalCliOptions& o) {
    if (!o.data_root.empty()) {
        if (o.ann.empty())
            o.ann = (fs::path(o.data_root) / "annotations/instances_val2017.json").string();
        if (o.images.empty()) o.images = (fs::path(o.data_root) / "val2017").string();
    }
    if (o.ann.empty() && o.images.empty()) {
        std::string assets = assets_dir();
        fs::path ann = fs::path(assets) / "val" / "instances_val.json";
        fs::path img = fs::path(assets) / "val" / "images";
        std::error_code ec;
        if (assets.empty() || !fs::is_regular_file(ann, ec) || !fs::is_directory(img, ec)) {
            return invalid(
                "no data given and the bundled val set (assets/val/instances_val.json + "
                "assets/val/images) was not found{}; pass --data-root DIR (COCO layout) or "
                "--ann FILE --images DIR",
                assets.empty() ? "" : " under " + assets);
        }
        o.ann = ann.string();
        o.images = img.string();
    }
    if (o.ann.empty()) return invalid("--images given without --ann (or --data-root)");
    if (o.images.empty()) return invalid("--ann given without --images (or --data-root)");
    std::error_code ec;
    if (!fs::is_regular_file(o.ann, ec))
        return io_error("annotation file {} does not exist", o.ann);
    if (!fs::is_directory(o.images, ec))
        return io_error("image folder {} does not exist", o.images);
    return Status::ok();
}

Result<EvalRun> evaluate_model_file(EvalCliOptions o) {
    LOWBIT_ASSIGN(o.model, resolve_model_path(o.model));
    LOWBIT_TRY(resolve_eval_data(o));

    EvalOptions eo;
    eo.ann_path = o.ann;
    eo.images_dir = o.images;
    if (!o.image_ids_list.empty()) {
        LOWBIT_ASSIGN(eo.image_ids, read_image_ids(o.image_ids_list));
    }
    eo.max_images = o.max_images;
    eo.decode.conf = static_cast<float>(o.conf);
    eo.decode.iou = static_cast<float>(o.iou);
    eo.decode.max_det = o.max_det;
    eo.decode.pre_nms_topk = o.pre_nms_topk;
    LOWBIT_ASSIGN(eo.head, parse_head_kind(o.head));
    LOWBIT_ASSIGN(eo.scores, parse_score_mode(o.scores));
    eo.class_map_file = o.class_map;
    eo.warmup_runs = o.warmup_runs;
    eo.skip_latency = o.skip_latency;
    eo.n_threads = o.threads;
    eo.progress = !o.quiet;

    LOWBIT_ASSIGN(Model model, load_model(o.model));
    const ValueInfo* input = image_input(model);
    if (!input) return invalid("{}: the model has no graph input", o.model);
    bool fixed = input->has_shape && input->dims.size() == 4;
    for (size_t i = 0; fixed && i < input->dims.size(); ++i) fixed = input->dims[i].is_fixed();
    eo.imgsz = static_cast<int>(image_size_for(model, o.imgsz));
    ExecutorOptions xo;
    xo.n_threads = o.threads;
    xo.reference_only = o.reference;
    apply_env_switches(xo);
    if (!fixed) xo.input_shapes[input->name] = {1, 3, eo.imgsz, eo.imgsz};
    auto ex = Executor::create(model, xo);
    if (!ex) return ex.status().with_context(o.model);

    std::vector<std::string> providers = o.providers;
    if (providers.empty()) providers = {"CPUExecutionProvider"};
    for (const std::string& p : providers) {
        if (p != "CPUExecutionProvider" && p != "cpu" && !o.quiet) {
            std::fprintf(stderr,
                         "lowbit eval: note: provider %s maps to lowbit's CPU backend in this "
                         "build\n",
                         p.c_str());
        }
    }
    if (!o.coco_yaml.empty() && !o.quiet) {
        std::fprintf(stderr,
                     "lowbit eval: note: --coco-yaml is accepted for compatibility; class names "
                     "come from the model metadata or --class-map\n");
    }

    EvalRun run;
    LOWBIT_ASSIGN(run.result, evaluate_detector(**ex, model, eo));
    const EvalResult& r = run.result;
    if (!o.quiet) {
        std::fprintf(stderr, "lowbit eval: %s; classes -> categories: %s\n",
                     r.layout.describe().c_str(), r.class_map.c_str());
        for (const std::string& n : r.notes) {
            std::fprintf(stderr, "lowbit eval: note: %s\n", n.c_str());
        }
    }
    EvalRunInfo& info = run.info;
    info.onnx_path = o.model;
    info.data_root = o.data_root;
    info.instances = o.ann;
    info.images_dir = o.images;
    info.providers = providers;
    info.imgsz = eo.imgsz;
    info.max_images = o.max_images;
    info.warmup_runs = o.warmup_runs;
    info.skip_latency = o.skip_latency;
    info.conf = o.conf;
    info.iou = o.iou;
    info.max_det = o.max_det;
    info.pre_nms_topk = o.pre_nms_topk;
    info.threads = o.threads;
    return run;
}

void print_eval_result(const EvalResult& r) {
    std::fputs(coco_summary(r.coco).c_str(), stdout);
    std::printf("mAP50-95 %.4f  mAP50 %.4f  (%lld images, %zu detections)\n", r.coco.stats[0],
                r.coco.stats[1], static_cast<long long>(r.num_images), r.detections.size());
    std::printf("latency mean %.3f ms  median %.3f ms  p90 %.3f ms  %.3f FPS\n", r.latency.mean_ms,
                r.latency.median_ms, r.latency.p90_ms, r.latency.throughput_fps);
    std::fflush(stdout);
}

int64_t count_quantized_nodes(const Graph& g) {
    // Tensors carrying dequantized values: DequantizeLinear outputs and Casts of them.
    std::unordered_set<std::string> dq;
    for (const Node& n : g.nodes) {
        if (n.op_type == "DequantizeLinear") dq.insert(n.outputs.begin(), n.outputs.end());
    }
    for (const Node& n : g.nodes) {
        if (n.op_type == "Cast" && !n.inputs.empty() && dq.count(n.inputs[0])) {
            dq.insert(n.outputs.begin(), n.outputs.end());
        }
    }
    int64_t count = 0;
    for (const Node& n : g.nodes) {
        if (n.op_type == "QuantizeLinear" || n.op_type == "DequantizeLinear" ||
            n.op_type == "Cast") {
            continue;
        }
        for (const std::string& in : n.inputs) {
            if (dq.count(in)) {
                ++count;
                break;
            }
        }
    }
    return count;
}

nlohmann::ordered_json variant_json(const VariantInfo& v, const Graph& g,
                                    const std::string& model_path) {
    nlohmann::ordered_json j = {{"name", v.name}, {"mode", v.mode}};
    if (v.k) j["k"] = *v.k;
    j["excluded_nodes"] = v.excluded_nodes;
    j["quantized_nodes"] = count_quantized_nodes(g);
    if (!v.calibration_method.empty()) j["calibration_method"] = v.calibration_method;
    std::error_code ec;
    const auto bytes = fs::file_size(model_path, ec);
    if (!ec) j["model_bytes"] = bytes;
    if (!v.scheme.empty()) j["scheme"] = v.scheme;
    return j;
}

Status write_results_json(const std::string& path, nlohmann::ordered_json metrics,
                          const nlohmann::ordered_json& variant) {
    metrics["variant"] = variant;
    fs::path parent = fs::path(path).parent_path();
    std::error_code ec;
    if (!parent.empty()) fs::create_directories(parent, ec);
    if (ec) return io_error("cannot create {}: {}", parent.string(), ec.message());
    return write_file_atomic(path, metrics.dump(2) + "\n");
}

}  // namespace lowbit::cli
