// COCO bbox evaluation with pycocotools' exact rules (research/yolo-coco.md §4): per
// (image, category) groups, crowd IoU = inter / detection area, area ranges from the GT `area`
// field (both bounds inclusive), 100 detections per image and category, greedy matching at the
// 10 IoU thresholds 0.50:0.05:0.95, 101-point interpolated precision, -1 for categories without
// ground truth, stable sorts everywhere (ties keep results-file order), and the 12 summary stats
// averaged in NumPy's summation order, so the numbers are pycocotools' to the last bit.
//
// Data layout (why it is fast): results and GT are bucketed once by (category, image); each
// category is evaluated independently (IoU matrix, matching for 4 areas x 10 thresholds, then
// accumulation) on the thread pool with dynamic scheduling; per category the detections are
// sorted once and the maxDets 1/10 subsets are read off that order.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "data/coco.h"

namespace lowbit {

struct CocoEvalOptions {
    // Images to evaluate (pycocotools params.imgIds); empty: every image of the GT file.
    std::vector<int64_t> img_ids;
    int n_threads = 0;  // <= 0: one per core
};

struct CocoEvalResult {
    static constexpr int kT = 10;   // IoU thresholds
    static constexpr int kR = 101;  // recall thresholds
    static constexpr int kA = 4;    // area ranges: all, small, medium, large
    static constexpr int kM = 3;    // maxDets: 1, 10, 100

    // stats[0..11] in pycocotools' summarize() order (AP, AP50, AP75, APs, APm, APl, AR1, AR10,
    // AR100, ARs, ARm, ARl); -1 where nothing was valid.
    std::array<double, 12> stats{};
    std::vector<int64_t> img_ids;  // evaluated, sorted
    std::vector<int64_t> cat_ids;  // sorted
    std::array<double, kT> iou_thrs{};
    std::array<double, kR> rec_thrs{};
    // pycocotools eval['precision'] [T,R,K,A,M] and eval['recall'] [T,K,A,M], row-major.
    std::vector<double> precision;
    std::vector<double> recall;
    int64_t num_gt = 0;          // GT annotations in the evaluated images and categories
    int64_t num_detections = 0;  // results in the evaluated images and categories

    double precision_at(int t, int r, int k, int a, int m) const {
        size_t K = cat_ids.size();
        return precision[(((static_cast<size_t>(t) * kR + r) * K + k) * kA + a) * kM + m];
    }
    double recall_at(int t, int k, int a, int m) const {
        size_t K = cat_ids.size();
        return recall[((static_cast<size_t>(t) * K + k) * kA + a) * kM + m];
    }
};

// Evaluates `results` (as loaded by load_coco_results / COCO.loadRes) against `gt`. Fails, as
// loadRes does, when a result refers to an image that is not in the GT file.
Result<CocoEvalResult> coco_evaluate(const CocoDataset& gt,
                                     const std::vector<CocoAnnotation>& results,
                                     const CocoEvalOptions& opts = {});

// The 12-line summary, formatted exactly as pycocotools' summarize() prints it.
std::string coco_summary(const CocoEvalResult& r);

// Short names of the 12 stats ("AP", "AP50", ..., "ARl").
const std::array<const char*, 12>& coco_stat_names();

// AP@[.50:.95] per category (area all, maxDets 100), -1 for categories without GT.
std::vector<double> coco_per_category_ap(const CocoEvalResult& r);

// NumPy's float64 mean (pairwise summation in 8192-element blocks), for bit-parity with
// np.mean. Exposed for tests.
double numpy_mean(const std::vector<double>& v);

}  // namespace lowbit
