// Image decoding and the seed's letterbox (research/seed-spec.md §3, research/yolo-coco.md §3.1):
// OpenCV imread (BGR, EXIF orientation applied, gray/alpha -> 3 channels), BGR -> RGB,
// r = min(S/h, S/w), resize to round-half-even(w*r) x round-half-even(h*r) with cv::INTER_LINEAR,
// pad with 114 (left/top = floor(pad/2), right/bottom = the rest, which is what Ultralytics'
// round(d -/+ 0.1) split gives), then CHW float32 / 255. One routine serves calib and eval.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"

namespace lowbit {

// Geometry of one letterboxed image; `scale` is the nominal ratio used to map boxes back.
struct Letterbox {
    int orig_w = 0, orig_h = 0;
    int size = 0;
    double scale = 0;
    int new_w = 0, new_h = 0;
    int pad_left = 0, pad_top = 0, pad_right = 0, pad_bottom = 0;
};

// The geometry for an h x w image into an S x S square (h, w, S > 0).
Letterbox letterbox_geometry(int orig_h, int orig_w, int size);

// Letterboxes an 8-bit BGR image (row stride `stride` bytes) into `out`, float32 CHW RGB
// [3, size, size], values /255 and padding 114/255.
Status letterbox_bgr(const uint8_t* bgr, int h, int w, size_t stride, int size, float* out,
                     Letterbox* info);

// Decodes `path` with OpenCV and letterboxes it into `out` ([3, size, size] floats). Errors name
// the file (missing, unreadable, not a decodable image).
Result<Letterbox> load_letterboxed(const std::string& path, int size, float* out);

// Maps an xyxy box from letterbox pixels back to the original image and clips it to
// [0, orig_w] x [0, orig_h] (seed-spec §3.4), in float32 as the seed's NumPy code does.
void unletterbox_xyxy(const Letterbox& lb, float box[4]);

}  // namespace lowbit
