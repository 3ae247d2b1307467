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

namespace lowbit {

// Bootstrap of mAP50-95 over images (issue 15 item 4). COCOeval's per-image matching (area
// all, 100 detections per image and category: what mAP50-95 reads) is done once; a resample
// that counts image i counts[i] times then only re-accumulates. A resample equals COCOeval on
// a data set where image i appears counts[i] times (copies adjacent, in image order, under new
// ids): tested against exactly that.
struct CocoImageMatches {
    struct Category {
        std::vector<uint32_t> begin;  // per image: its detections [begin[i], begin[i+1])
        std::vector<double> scores;   // per detection, image order then score order
        std::vector<uint8_t> codes;   // [detection][threshold]: 0 FP, 1 TP, 2 ignored
        std::vector<int64_t> npig;    // per image: non-ignored GT
    };
    std::vector<int64_t> img_ids;  // sorted, as CocoEvalResult::img_ids
    std::vector<Category> cats;
};

Result<CocoImageMatches> coco_image_matches(const CocoDataset& gt,
                                            const std::vector<CocoAnnotation>& results,
                                            const CocoEvalOptions& opts = {});

// mAP50-95 with image i (of m.img_ids) counted counts[i] times; -1 when no category has GT.
double coco_resampled_map(const CocoImageMatches& m, const std::vector<int32_t>& counts);

// `resamples` resamples of n images with replacement from a seeded generator (splitmix64):
// counts per image. The same (n, resamples, seed) give the same image sets, so two models
// evaluated on the same images are resampled in pairs.
std::vector<std::vector<int32_t>> bootstrap_counts(size_t n, int resamples, uint64_t seed);

struct BootstrapResult {
    int resamples = 0;
    uint64_t seed = 0;
    std::vector<double> values;  // mAP50-95 per resample, in resample order
    double lo = 0, hi = 0;       // 2.5 and 97.5 percentiles (linear, as numpy.percentile)
};

// The percentile q in [0, 100] of v (numpy's default linear interpolation).
double percentile(std::vector<double> v, double q);

Result<BootstrapResult> bootstrap_map(const CocoDataset& gt,
                                      const std::vector<CocoAnnotation>& results,
                                      const CocoEvalOptions& opts, int resamples, uint64_t seed);

}  // namespace lowbit
