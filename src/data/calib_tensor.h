// Calibration tensors: the seed's make_yolov10m_calib_npy.py (research/seed-spec.md §4.2).
// Every image is letterboxed (data/letterbox.h) and the results are stacked in list order into
// one float32 NCHW [N, 3, S, S] NPY v1.0 file.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"

namespace lowbit {

class Progress;

struct CalibOptions {
    int imgsz = 640;
    int n_threads = 0;  // decode/letterbox threads; <= 0: one per core
};

// Writes the calibration tensor for `images` to `out_path` (atomically: nothing is left behind
// when an image fails). Images are processed in parallel batches and streamed to the file, so
// memory stays at one batch. `progress` (optional) advances once per image.
Status write_calib_npy(const std::vector<std::string>& images, const std::string& out_path,
                       const CalibOptions& opts = {}, Progress* progress = nullptr);

}  // namespace lowbit
