// `lowbit run`: the seed's whole workflow (research/seed-spec.md §2, §11, §12) as a graph of
// typed steps (pipeline/step_graph.h) into one run root:
//
//   baseline-onnx/ baseline-coco/ calib/ onnx/ int8-coco/ int8-head-coco/ sensitivity/<mode>/
//   schemes/<mode>/ candidates/ results/ summary.md report.html nodes_to_exclude_head.txt
//   logs/<step>.log run-times.json .lowbit-run/<step>.json
//
// Every step runs a job of pipeline/jobs.h (what its standalone command line, printed as the
// step starts, runs) with its log; steps whose inputs and outputs are unchanged since they last
// finished are skipped, so a killed run resumes where it stopped.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "core/status.h"
#include "pipeline/job_inputs.h"
#include "pipeline/slurm.h"
#include "pipeline/step_graph.h"

namespace lowbit::pipeline {

struct RunOptions {
    std::string root;       // default: runs/<YYYY-MM-DD_HH-MM-SS>
    std::string model;      // default: the bundled model
    std::string data_root;  // COCO folder; default: the bundled val set
    std::string ann;        // override data_root
    std::string images;
    std::string calib_list;  // default: the bundled assets/calib/calib100.txt
    int imgsz = 0;           // 0: the model's input size
    std::vector<std::string> modes = {"fp8", "int8"};
    std::vector<int> ks = {0, 5, 10, 20};
    int threads = 0;
    int sensitivity_images = 16;
    int max_images = 0;
    std::string calibration_method;  // empty: quantize's default
    std::string high_precision = "fp32";
    bool force = false;
    std::vector<std::string> force_steps;
    EngineSwitches engine;  // handed to every step's job

    // Where the steps run (pipeline/slurm.h): "local" (this process, the default), "slurm"
    // (each step a Slurm job, split steps job arrays of `shards` tasks plus a merge job) or
    // "print" (the Slurm scripts written, nothing submitted).
    std::string scheduler = "local";
    int shards = 1;
    SlurmOptions slurm;
    // A scheduler's job (what the generated scripts run): only step `step`, whole, or with
    // `step_shard` "I/N" its shard I of N into <root>/shards/<step>/, or with `step_merge` its
    // merge of those shards (then recorded as the step's finished run).
    std::string step;
    std::string step_shard;
    bool step_merge = false;
};

// RunOptions with every default resolved and checked: what the step graph is built from.
struct RunPlan {
    RunOptions options;  // model, ann, images, calib_list, imgsz and root filled in; modes unique
    std::vector<std::string> calib_images;  // the list's images (inputs of the calib step)
    std::string method;                     // calibration method recorded in the results
};

// Resolves and checks the options (reads the model and the calibration list; writes nothing).
Result<RunPlan> plan_run(RunOptions o);

// The steps of the run, in order: smoke, baseline, calib, int8, int8-eval, head-exclude,
// int8-head, int8-head-eval, sensitivity-<mode>..., schemes-<mode>..., candidates-<mode>...,
// compare. Pure: nothing is read or written until the steps run.
std::vector<Step> build_run_steps(const RunPlan& plan);

// The argv (without "lowbit") of `lowbit run` with the plan's resolved options: what a
// scheduler's job runs, with --step ... appended.
std::vector<std::string> run_command_line(const RunPlan& plan);

// <root>/shards/<step>
std::string step_shard_dir(const std::string& root, const std::string& step);

// The due steps of the run as Slurm jobs (pipeline/slurm.h): scripts into <root>/slurm/, then
// (scheduler "slurm") submitted and waited for. The outcome of every step.
Result<std::vector<StepOutcome>> run_scheduled(const RunPlan& plan, std::vector<Step>& steps,
                                               const RunStepsOptions& ro, Fingerprinter& fp,
                                               std::FILE* progress);

// No output of the steps (nor their logs, run-times.json) is an input the user gave (--model,
// --ann, --images, --calib-list and its images): a usage error naming both.
Status check_run_paths(const RunPlan& plan, const std::vector<Step>& steps);

// The whole run: plan, steps, run-times.json, then the comparison table and a table of the
// steps to `out`; progress to stderr. An error when a step failed or could not run.
Status run_workflow(const RunOptions& options, std::FILE* out);

}  // namespace lowbit::pipeline
