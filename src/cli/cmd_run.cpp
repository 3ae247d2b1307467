// lowbit run: the whole workflow into one resumable run root (pipeline/run_workflow.h has the
// steps and how they resume); this file only declares its flags.
#include <memory>

#include "cli/commands.h"
#include "cli/common.h"
#include "pipeline/run_workflow.h"

namespace lowbit::cli {

void add_run_command(CLI::App& app, CommandFn& run) {
    auto o = std::make_shared<pipeline::RunOptions>();
    CLI::App* sub = app.add_subcommand(
        "run",
        "The whole workflow into one run root: smoke test, FP32 eval, calibration tensor, INT8 "
        "+ eval, INT8 with the head excluded + eval, per-node sensitivity, top-K schemes, "
        "candidates + evals, comparison (summary.md, report.html). With no arguments: the "
        "bundled model and data. A killed run resumes where it stopped when run again with "
        "the same --root.");
    sub->add_option("--root", o->root, "Run root (default: runs/<YYYY-MM-DD_HH-MM-SS>)");
    sub->add_option("--model", o->model, "Float ONNX model (default: the bundled model)");
    sub->add_option("--data", o->data_root,
                    "COCO folder: annotations/instances_val2017.json + val2017/ (default: the "
                    "bundled val set)");
    sub->add_option("--ann", o->ann, "Annotation file (overrides --data)");
    sub->add_option("--images", o->images, "Image folder (overrides --data)");
    sub->add_option("--calib-list", o->calib_list,
                    "Calibration image list (default: the bundled assets/calib/calib100.txt)");
    sub->add_option("--imgsz", o->imgsz,
                    "Letterbox size for calibration and evaluation (default: the model's)");
    sub->add_option("--modes", o->modes, "Modes of the sensitivity/candidate steps: fp8, int8, w4a16, w4a8")
        ->capture_default_str();
    sub->add_option("--ks", o->ks, "Values of K for the schemes")->capture_default_str();
    sub->add_option("--threads", o->threads, "Threads (default: all cores)")
        ->check(CLI::NonNegativeNumber);
    sub->add_option("--sensitivity-images", o->sensitivity_images,
                    "Calibration images the sensitivity sweep measures on")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    sub->add_option("--max-images", o->max_images, "Images per evaluation (0: all)")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    sub->add_option("--calibration-method", o->calibration_method,
                    "Calibration method of every quantization (default: quantize's)");
    sub->add_option("--high-precision", o->high_precision,
                    "Precision of the candidates' non-quantized part: fp32 or fp16")
        ->capture_default_str();
    sub->add_flag("--force", o->force, "Redo every step");
    sub->add_option("--force-step", o->force_steps, "Redo this step (repeatable)");
    sub->add_option("--scheduler", o->scheduler,
                    "local (run the steps here), slurm (each step a Slurm job; split steps job "
                    "arrays of --shards tasks plus a merge; afterok dependencies; waits) or print "
                    "(write the sbatch scripts and ROOT/slurm/submit.sh without submitting)")
        ->capture_default_str()
        ->check(CLI::IsMember({"local", "slurm", "print"}));
    sub->add_option("--shards", o->shards,
                    "Shards of each evaluation, sensitivity and candidates step (Slurm)")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    sub->add_option("--partition", o->slurm.partition, "Slurm partition of every job");
    sub->add_option("--account", o->slurm.account, "Slurm account of every job");
    sub->add_option("--time", o->slurm.time, "Slurm time limit of every job (e.g. 01:00:00)");
    sub->add_option("--cpus-per-task", o->slurm.cpus_per_task, "Slurm CPUs per task")
        ->check(CLI::NonNegativeNumber);
    sub->add_option("--gpus-per-task", o->slurm.gpus_per_task, "Slurm GPUs per task")
        ->check(CLI::NonNegativeNumber);
    sub->add_option("--sbatch-arg", o->slurm.sbatch_args,
                    "Extra sbatch option for every job, e.g. --sbatch-arg=--qos=high (repeatable)");
    sub->add_option("--poll", o->slurm.poll_seconds, "Seconds between Slurm queue checks")
        ->capture_default_str();
    sub->add_option("--step", o->step,
                    "Run only this step (what the generated Slurm scripts run)");
    sub->add_option("--step-shard", o->step_shard,
                    "With --step: only shard I/N of the step, into ROOT/shards/STEP/");
    sub->add_flag("--step-merge", o->step_merge,
                  "With --step: finish the step from its shards (lowbit merge) and record it");
    sub->callback([o, &run] {
        run = [o] {
            o->engine = engine_switches_from_env();
            return pipeline::run_workflow(*o, stdout);
        };
    });
}

}  // namespace lowbit::cli
