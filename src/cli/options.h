// Flags that several commands share, registered onto the library's option structs
// (pipeline/job_inputs.h, pipeline/eval_job.h): the calibration input and method, Q/DQ placement,
// and the data and decoding flags of a COCO evaluation. The names below are the library's,
// brought into lowbit::cli so that commands spell them as before.
#pragma once

#include <CLI/CLI.hpp>

#include "pipeline/eval_job.h"
#include "pipeline/job_inputs.h"

namespace lowbit::cli {

using pipeline::apply_placement_options;
using pipeline::CalibInputOptions;
using pipeline::CalibMethodOptions;
using pipeline::EvalRun;
using pipeline::evaluate_model_file;
using pipeline::image_input;
using pipeline::image_size_for;
using pipeline::open_calib_input;
using pipeline::parse_calib_method_options;
using pipeline::parse_high_precision;
using pipeline::parse_quant_mode;
using pipeline::read_node_list;
using pipeline::resolve_eval_data;
using EvalCliOptions = pipeline::EvalJob;
using PlacementCliOptions = pipeline::PlacementRequest;

// --calib (and ModelOpt's --calibration_data_path when `modelopt_spelling`), --calib-list,
// --calib-images. --imgsz is left to the command (its meaning may be wider).
void add_calib_input_options(CLI::App* sub, CalibInputOptions& o, bool modelopt_spelling);

// --calibration-method (ModelOpt: --calibration_method), --percentile.
void add_calib_method_options(CLI::App* sub, CalibMethodOptions& o);

// --exclude-nodes-file, --exclude, --nodes_to_exclude, --op-types, --exclude-op-types,
// --modelopt-parity, --disable-mha-qdq (quantize and sensitivity).
void add_placement_options(CLI::App* sub, PlacementCliOptions& o);

// Which images: --data-root (also --data), --ann, --images, --image-ids-list, --max-images.
void add_eval_data_options(CLI::App* sub, EvalCliOptions& o);
// How detections are made and timed: --conf, --iou, --max-det, --pre-nms-topk, --warmup-runs,
// --skip-latency, --head, --scores, --class-map.
void add_eval_decode_options(CLI::App* sub, EvalCliOptions& o);

}  // namespace lowbit::cli
