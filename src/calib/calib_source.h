// Calibration samples, read one at a time so that calibration memory never scales with the size
// of the calibration set.
//  - NPY: a float32 (or float16) array [N, ...] as `lowbit calib` / the seed's
//    make_yolov10m_calib_npy.py write it; sample i is read from its file offset on demand.
//  - Images: a list of image files, each decoded and letterboxed on demand by data/letterbox.h
//    (the seed's preprocessing, research/seed-spec.md §3.1-§3.3), exactly as `lowbit calib`
//    would have stored it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"

namespace lowbit::calib {

class CalibSource {
public:
    virtual ~CalibSource() = default;
    virtual int64_t size() const = 0;
    // Shape of one sample (without the sample axis), e.g. [3, 640, 640].
    virtual const Shape& sample_shape() const = 0;
    // Writes sample `index` as float32 into dst (numel(sample_shape()) floats).
    virtual Status read(int64_t index, float* dst) = 0;
    virtual std::string describe() const = 0;
};

Result<std::unique_ptr<CalibSource>> open_npy_source(const std::string& path);
Result<std::unique_ptr<CalibSource>> open_image_source(std::vector<std::string> images,
                                                       int64_t imgsz);

// --calib-images arguments: a folder contributes its images (data/image_list.h's
// list_image_dir: sorted by name), a file is taken as is.
Result<std::vector<std::string>> collect_images(const std::vector<std::string>& paths);

}  // namespace lowbit::calib
