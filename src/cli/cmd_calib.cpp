// lowbit calib: image list -> letterboxed float32 NCHW calibration tensor (.npy), the seed's
// make_yolov10m_calib_npy.py (research/seed-spec.md §4.2).
// This file declares the flags; the work is run_job(pipeline::CalibJob) (pipeline/jobs.h).
#include <memory>

#include "cli/commands.h"
#include "pipeline/jobs.h"

namespace lowbit::cli {

void add_calib_command(CLI::App& app, CommandFn& run) {
    auto o = std::make_shared<pipeline::CalibJob>();
    CLI::App* sub = app.add_subcommand(
        "calib",
        "Build a calibration tensor: letterbox each image (as Ultralytics/the seed) and stack "
        "them in list order into a float32 [N,3,S,S] .npy.");
    sub->add_option("--list", o->list,
                    "Text file, one image path per line (relative to --data-root, or to the "
                    "list's folder)")
        ->check(CLI::ExistingFile);
    sub->add_option("--images", o->images_dir, "Use every image in this folder (sorted by name)");
    sub->add_option("--data-root,--repo-root", o->data_root,
                    "Base folder for relative paths in --list");
    sub->add_option("--out", o->out, "Output .npy path (parent folders are created)")->required();
    sub->add_option("--imgsz", o->imgsz, "Square letterbox size")->capture_default_str();
    sub->add_option("--max-images", o->max_images, "Keep only the first N images (0: all)")
        ->check(CLI::NonNegativeNumber);
    sub->add_option("--threads", o->threads, "Decode threads (default: all cores)")
        ->check(CLI::NonNegativeNumber);
    sub->callback([o, &run] { run = [o] { return pipeline::run_job(*o, stdout); }; });
}

}  // namespace lowbit::cli
