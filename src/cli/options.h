// Flags that several commands share, registered onto the library's option structs
// (pipeline/job_inputs.h, pipeline/eval_job.h): the calibration input and method, Q/DQ placement,
// and the data and decoding flags of a COCO evaluation.
#pragma once

#include <CLI/CLI.hpp>

#include "pipeline/eval_job.h"
#include "pipeline/job_inputs.h"

namespace lowbit::cli {

// --calib (and ModelOpt's --calibration_data_path when `modelopt_spelling`), --calib-list,
// --calib-images. --imgsz is left to the command (its meaning may be wider).
void add_calib_input_options(CLI::App* sub, pipeline::CalibInputOptions& o, bool modelopt_spelling);

// --calibration-method (ModelOpt: --calibration_method), --percentile.
void add_calib_method_options(CLI::App* sub, pipeline::CalibMethodOptions& o);

// --exclude-nodes-file, --exclude, --nodes_to_exclude, --op-types, --exclude-op-types,
// --modelopt-parity, --disable-mha-qdq, --placement (quantize, sensitivity, mixed).
void add_placement_options(CLI::App* sub, pipeline::PlacementRequest& o);

// Which images: --data-root (also --data), --ann, --images, --image-ids-list, --max-images.
void add_eval_data_options(CLI::App* sub, pipeline::EvalJob& o);
// How detections are made and timed: --conf, --iou, --max-det, --pre-nms-topk, --warmup-runs,
// --skip-latency, --head, --scores, --class-map.
void add_eval_decode_options(CLI::App* sub, pipeline::EvalJob& o);

// --shard I/N and --shard-dir DIR (pipeline/shard.h) into `spec` and `o.dir`; the command calls
// pipeline::resolve_shard_options(spec, o) before its job.
void add_shard_options(CLI::App* sub, std::string& spec, pipeline::ShardOptions& o,
                       const std::string& what);

}  // namespace lowbit::cli
