// Calibration samples, read one at a time so that calibration memory never scales with the size
// of the calibration set.
//  - NPY: a float32 (or float16) array [N, ...] as `lowbit calib` / the seed's
//    make_yolov10m_calib_npy.py write it; sample i is read from its file offset on demand.
//  - Images: a list of image files, each decoded and letterboxed on demand exactly as the seed's
//    preprocessing (research/seed-spec.md §3.1-§3.3: cv2.imread, BGR->RGB, letterbox to S x S
//    with round-half-even resize, floor/ceil padding split, pad value 114, bilinear resize,
//    CHW float32 / 255).
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

// Image list file: one path per line; blank lines and lines starting with '#' are skipped;
// relative paths are resolved against the list file's folder; every file must exist.
Result<std::vector<std::string>> read_image_list(const std::string& list_path);
// Every .jpg/.jpeg/.png/.bmp file of a folder, sorted by name (non-recursive); a file argument
// is taken as is.
Result<std::vector<std::string>> collect_images(const std::vector<std::string>& paths);

// Seed letterbox of an 8-bit BGR image (rows x cols x 3) into CHW float32 RGB / 255.
Status letterbox_to_chw(const uint8_t* bgr, int rows, int cols, size_t row_stride, int64_t size,
                        float* dst);

}  // namespace lowbit::calib
