// lowbit calib: image list -> letterboxed float32 NCHW calibration tensor (.npy), the seed's
// make_yolov10m_calib_npy.py (research/seed-spec.md §4.2).
#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/progress.h"
#include "data/calib_tensor.h"
#include "data/image_list.h"

namespace lowbit::cli {

namespace {

struct CalibCliOptions {
    std::string list;
    std::string images_dir;
    std::string data_root;
    std::string out;
    int imgsz = 640;
    int max_images = 0;
    int threads = 0;
};

Status run_calib(const CalibCliOptions& o) {
    if (o.list.empty() == o.images_dir.empty()) {
        return invalid("give exactly one of --list FILE or --images DIR");
    }
    std::vector<std::string> images;
    if (!o.list.empty()) {
        LOWBIT_ASSIGN(images, read_image_list(o.list, o.data_root));
    } else {
        LOWBIT_ASSIGN(images, list_image_dir(o.images_dir));
    }
    if (o.max_images > 0 && images.size() > static_cast<size_t>(o.max_images)) {
        images.resize(static_cast<size_t>(o.max_images));
    }
    std::filesystem::path parent = std::filesystem::path(o.out).parent_path();
    if (!parent.empty()) {
        std::error_code ec;
        std::filesystem::create_directories(parent, ec);
        if (ec) return io_error("cannot create {}: {}", parent.string(), ec.message());
    }
    CalibOptions co;
    co.imgsz = o.imgsz;
    co.n_threads = o.threads;
    {
        Progress progress("calib", static_cast<int64_t>(images.size()), "img");
        LOWBIT_TRY(write_calib_npy(images, o.out, co, &progress));
    }
    std::printf("%s: float32 [%zu, 3, %d, %d]\n", o.out.c_str(), images.size(), o.imgsz, o.imgsz);
    return Status::ok();
}

}  // namespace

void add_calib_command(CLI::App& app, CommandFn& run) {
    auto o = std::make_shared<CalibCliOptions>();
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
    sub->callback([o, &run] { run = [o] { return report("calib", run_calib(*o)); }; });
}

}  // namespace lowbit::cli
