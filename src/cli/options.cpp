#include "cli/options.h"

namespace lowbit::cli {

void add_calib_input_options(CLI::App* sub, pipeline::CalibInputOptions& o, bool modelopt_spelling) {
    sub->add_option(modelopt_spelling ? "--calib,--calibration_data_path" : "--calib", o.npy,
                    "Calibration .npy [N, C, H, W] float32 (from `lowbit calib`)");
    sub->add_option("--calib-list", o.list,
                    "Text file of calibration image paths, relative to the list's folder "
                    "(letterboxed like `lowbit calib`)");
    sub->add_option("--calib-images", o.images,
                    "Calibration images: files or folders (letterboxed like `lowbit calib`)");
}

void add_calib_method_options(CLI::App* sub, pipeline::CalibMethodOptions& o) {
    sub->add_option("--calibration-method,--calibration_method", o.method,
                    "mse (the threshold minimising the tensor's quantization error on the target "
                    "grid), entropy (TensorRT's KL calibrator; clips YOLO heads), max or "
                    "percentile")
        ->capture_default_str();
    sub->add_option("--percentile", o.percentile, "Percentile for --calibration-method percentile")
        ->capture_default_str();
}

void add_placement_options(CLI::App* sub, pipeline::PlacementRequest& o) {
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
    sub->add_option("--placement", o.placement,
                    "Conv rules: modelopt (ModelOpt's: small-channel, depthwise 1x1 and FP8 "
                    "large-kernel Convs stay in high precision, as TensorRT needs) or all (every "
                    "2-D Conv is quantized: lowbit's int8/bf16 kernels run them all)")
        ->capture_default_str();
}

void add_eval_data_options(CLI::App* sub, pipeline::EvalJob& o) {
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

void add_eval_decode_options(CLI::App* sub, pipeline::EvalJob& o) {
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
    sub->add_option("--head", o.head, "Output layout: auto, dfl, decoded, e2e or detr (RT-DETR queries [1,K,4+nc])")
        ->capture_default_str();
    sub->add_option("--scores", o.scores,
                    "Class channels: auto (detect probabilities), logits (sigmoid) or probs")
        ->capture_default_str();
    sub->add_option("--class-map", o.class_map,
                    "Class -> category id: JSON array/object or one id per line")
        ->check(CLI::ExistingFile);
}

void add_shard_options(CLI::App* sub, std::string& spec, pipeline::ShardOptions& o,
                       const std::string& what) {
    sub->add_option("--shard", spec,
                    "Do only part I of N (0-based) of the work: " + what +
                        "; writes DIR/shard-I-of-N.json for `lowbit merge DIR`");
    sub->add_option("--shard-dir", o.dir, "Folder of the shard files (with --shard)");
}

}  // namespace lowbit::cli
