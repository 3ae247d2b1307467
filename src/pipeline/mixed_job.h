// `lowbit mixed` as a job (pipeline/jobs.h style): see mixed_job.cpp and quant/mixed.h.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "core/status.h"
#include "pipeline/eval_job.h"
#include "pipeline/job_inputs.h"

namespace lowbit::pipeline {

struct MixedJob {
    std::string model;
    std::string out;             // the chosen model
    std::string assignment_out;  // default: OUT stem + .assign.json
    std::string pareto_out;      // default: OUT stem + .pareto.json
    CalibInputOptions calib = {"", "", {}, 0};
    CalibMethodOptions method;
    PlacementRequest placement;
    std::vector<std::string> formats = {"int4w", "int8", "fp8", "float"};
    std::string budget_bytes;    // N, or F x the INT8 model's ("0.6x"); empty: none
    std::string budget_ms;       // latency budget in ms (measured, pipeline/node_latency.h)
    std::string budget_latency;  // latency budget as F x the FP32 model's ("0.5x")
    int latency_runs = 5;        // timed runs per latency measurement (median)
    double max_drop = -1;
    bool max_drop_set = false;
    int64_t sens_images = 16;
    std::string sensitivity_dir;         // cache of per-format sensitivities
    std::string weight_method = "gptq";  // int4w nodes: rtn, gptq or adaround
    int64_t block_size = 0;
    int64_t gptq_samples = 32;  // 0: every calibration sample (also AdaRound's, bias correction's)
    int64_t adaround_iters = 500;
    double adaround_lambda = 5.0;
    bool bias_correction = false;  // int4w nodes (any weight method)
    int max_evals = 6;
    int front_points = 2;
    EvalJob eval;  // data, max_images, thresholds
    int threads = 0;
    bool quiet = false;
    EngineSwitches engine;
};
Status run_job(const MixedJob& o, std::FILE* out);

}  // namespace lowbit::pipeline
