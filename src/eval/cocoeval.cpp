// pycocotools COCOeval (bbox), re-implemented. Names in comments refer to pycocotools'
// cocoeval.py: _prepare, computeIoU, evaluateImg, accumulate, summarize.
#include "eval/cocoeval.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <unordered_map>
#include <utility>

#include "core/thread_pool.h"

namespace lowbit {

namespace {

constexpr int kT = CocoEvalResult::kT;
constexpr int kR = CocoEvalResult::kR;
constexpr int kA = CocoEvalResult::kA;
constexpr int kM = CocoEvalResult::kM;
constexpr int kMaxDets[kM] = {1, 10, 100};
constexpr int kMaxDet = 100;  // params.maxDets[-1]: the per (image, category) cap

// params.areaRng: [0, 1e5**2], [0, 32**2], [32**2, 96**2], [96**2, 1e5**2]; both ends inclusive.
constexpr double kAreaLo[kA] = {0.0, 0.0, 1024.0, 9216.0};
constexpr double kAreaHi[kA] = {1e10, 1024.0, 9216.0, 1e10};

// Detection outcome at one (area range, IoU threshold), as accumulate() reads dtMatches and
// dtIgnore: a true positive, a false positive, or ignored (neither).
enum Code : uint8_t { kFp = 0, kTp = 1, kIgnored = 2 };

// np.linspace(start, stop, num): i * ((stop - start) / (num - 1)) + start, last = stop.
template <size_t N>
std::array<double, N> linspace(double start, double stop) {
    std::array<double, N> v{};
    double step = (stop - start) / static_cast<double>(N - 1);
    for (size_t i = 0; i < N; ++i) v[i] = static_cast<double>(i) * step + start;
    v[N - 1] = stop;
    return v;
}

// NumPy's pairwise_sum for float64 (numpy/_core/src/umath/loops_utils.h.src).
double pairwise_sum(const double* a, size_t n) {
    if (n < 8) {
        double res = 0.0;
        for (size_t i = 0; i < n; ++i) res += a[i];
        return res;
    }
    if (n <= 128) {
        double r[8];
        for (int j = 0; j < 8; ++j) r[j] = a[j];
        size_t i = 8;
        for (; i < n - (n % 8); i += 8) {
            for (int j = 0; j < 8; ++j) r[j] += a[i + j];
        }
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; ++i) res += a[i];
        return res;
    }
    size_t n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}

// maskApi.c bbIou for one pair: boxes are [x, y, w, h]; a crowd GT's union is the detection area.
inline double bb_iou(const std::array<double, 4>& d, const std::array<double, 4>& g, bool crowd) {
    double w = std::fmin(d[2] + d[0], g[2] + g[0]) - std::fmax(d[0], g[0]);
    if (w <= 0) return 0.0;
    double h = std::fmin(d[3] + d[1], g[3] + g[1]) - std::fmax(d[1], g[1]);
    if (h <= 0) return 0.0;
    double i = w * h;
    double da = d[2] * d[3];
    double u = crowd ? da : da + g[2] * g[3] - i;
    return i / u;
}

// (image index, annotation index) of one category's members, sorted by image then file order.
using Members = std::vector<std::pair<int32_t, uint32_t>>;

struct Shared {
    const CocoDataset* gt;
    const std::vector<CocoAnnotation>* dt;
    const std::vector<Members>* gt_by_cat;
    const std::vector<Members>* dt_by_cat;
    std::array<double, kT> iou_thrs;
    std::array<double, kR> rec_thrs;
    size_t K;
    CocoEvalResult* out;
};

// Per-thread scratch, reused across categories.
struct Scratch {
    std::vector<uint32_t> dt_order;
    std::vector<double> ious;
    std::vector<int32_t> gt_order;
    std::vector<uint8_t> gt_ignore_sorted;
    std::vector<uint8_t> gt_matched;
    // Per category: kept detections of every image (image order, score order within image).
    std::vector<double> scores;
    std::vector<uint8_t> rank;   // position within its image's list (< 100)
    std::vector<uint8_t> codes;  // [det][area][threshold]
    std::vector<uint32_t> order;
    std::vector<uint8_t> sorted_codes, sorted_rank;
    std::vector<double> rc, pr;  // [threshold][detection]
};

// evaluateImg for every area range of one (image, category) group; appends the group's kept
// detections to s.scores / s.rank / s.codes and adds its non-ignored GT counts to npig.
void evaluate_group(const Shared& sh, const Members& gts, size_t g0, size_t g1, const Members& dts,
                    size_t d0, size_t d1, Scratch& s, int64_t npig[kA]) {
    const auto& G = sh.gt->annotations;
    const auto& D = *sh.dt;
    const size_t ng = g1 - g0;

    // computeIoU / evaluateImg: detections stably sorted by descending score, first 100 kept.
    s.dt_order.clear();
    for (size_t i = d0; i < d1; ++i) s.dt_order.push_back(dts[i].second);
    std::stable_sort(s.dt_order.begin(), s.dt_order.end(),
                     [&](uint32_t a, uint32_t b) { return D[a].score > D[b].score; });
    if (s.dt_order.size() > static_cast<size_t>(kMaxDet)) s.dt_order.resize(kMaxDet);
    const size_t nd = s.dt_order.size();

    // IoU matrix [D x G] with G in file order (computeIoU), permuted per area below.
    s.ious.resize(nd * ng);
    for (size_t d = 0; d < nd; ++d) {
        const CocoAnnotation& det = D[s.dt_order[d]];
        for (size_t g = 0; g < ng; ++g) {
            const CocoAnnotation& gt = G[gts[g0 + g].second];
            s.ious[d * ng + g] = bb_iou(det.bbox, gt.bbox, gt.iscrowd);
        }
    }

    const size_t base = s.scores.size();
    for (size_t d = 0; d < nd; ++d) {
        s.scores.push_back(D[s.dt_order[d]].score);
        s.rank.push_back(static_cast<uint8_t>(d));
    }
    s.codes.resize((base + nd) * kA * kT);

    s.gt_order.resize(ng);
    s.gt_ignore_sorted.resize(ng);
    s.gt_matched.resize(ng);
    for (int a = 0; a < kA; ++a) {
        // gt['_ignore'] = ignore (= iscrowd) or area outside the range; stable sort puts the
        // non-ignored first (np.argsort(kind='mergesort') of 0/1 flags).
        size_t pos = 0;
        for (int pass = 0; pass < 2; ++pass) {
            for (size_t g = 0; g < ng; ++g) {
                const CocoAnnotation& gt = G[gts[g0 + g].second];
                bool ign = gt.iscrowd || gt.area < kAreaLo[a] || gt.area > kAreaHi[a];
                if (static_cast<int>(ign) != pass) continue;
                s.gt_order[pos] = static_cast<int32_t>(g);
                s.gt_ignore_sorted[pos] = ign;
                ++pos;
                if (!ign) ++npig[a];
            }
        }
        for (int t = 0; t < kT; ++t) {
            std::fill(s.gt_matched.begin(), s.gt_matched.end(), 0);
            for (size_t d = 0; d < nd; ++d) {
                const CocoAnnotation& det = D[s.dt_order[d]];
                double best = std::min(sh.iou_thrs[t], 1 - 1e-10);
                int m = -1;
                if (ng > 0) {
                    const double* iou_row = &s.ious[d * ng];
                    for (size_t gp = 0; gp < ng; ++gp) {
                        const int32_t g = s.gt_order[gp];
                        // An already matched GT is skipped unless it is a crowd.
                        if (s.gt_matched[gp] && !G[gts[g0 + g].second].iscrowd) continue;
                        // Matched to a regular GT and reached the ignored ones: stop.
                        if (m > -1 && !s.gt_ignore_sorted[m] && s.gt_ignore_sorted[gp]) break;
                        if (iou_row[g] < best) continue;
                        best = iou_row[g];
                        m = static_cast<int>(gp);
                    }
                }
                bool ignored = false;
                bool matched = false;
                if (m > -1) {
                    ignored = s.gt_ignore_sorted[m];
                    // dtMatches stores the GT id; accumulate() tests it for != 0, so a match to
                    // a GT whose id is 0 counts as unmatched (a pycocotools quirk we keep).
                    matched = G[gts[g0 + s.gt_order[m]].second].id != 0;
                    s.gt_matched[m] = 1;
                }
                // Unmatched detections outside the area range are ignored.
                if (!matched && (det.area < kAreaLo[a] || det.area > kAreaHi[a])) ignored = true;
                s.codes[((base + d) * kA + a) * kT + t] =
                    ignored ? kIgnored : (matched ? kTp : kFp);
            }
        }
    }
}

// accumulate() for one category: precision/recall for every (threshold, area, maxDets).
void accumulate_category(const Shared& sh, size_t k, Scratch& s, const int64_t npig[kA]) {
    const size_t n = s.scores.size();
    s.order.resize(n);
    for (size_t i = 0; i < n; ++i) s.order[i] = static_cast<uint32_t>(i);
    // np.argsort(-dtScores, kind='mergesort') over the images' lists concatenated in image
    // order. The maxDets 1 and 10 subsets keep their relative order in this sort, so one sort
    // serves all three.
    std::stable_sort(s.order.begin(), s.order.end(),
                     [&](uint32_t a, uint32_t b) { return s.scores[a] > s.scores[b]; });
    // Outcomes and ranks in score order, so the passes below read memory sequentially.
    constexpr size_t kCodes = static_cast<size_t>(kA) * kT;
    s.sorted_codes.resize(n * kCodes);
    s.sorted_rank.resize(n);
    for (size_t j = 0; j < n; ++j) {
        const size_t i = s.order[j];
        std::copy_n(&s.codes[i * kCodes], kCodes, &s.sorted_codes[j * kCodes]);
        s.sorted_rank[j] = s.rank[i];
    }
    s.rc.resize(n * kT);
    s.pr.resize(n * kT);
    const double eps = std::numeric_limits<double>::epsilon();  // np.spacing(1)
    CocoEvalResult& out = *sh.out;
    const size_t K = sh.K;
    for (int a = 0; a < kA; ++a) {
        if (npig[a] == 0) continue;
        const double np_ = static_cast<double>(npig[a]);
        for (int m = 0; m < kM; ++m) {
            const int max_det = kMaxDets[m];
            // Cumulative TP/FP per threshold; recall and precision at every detection
            // (ignored ones included: they repeat the previous values, as in pycocotools).
            double tp[kT] = {}, fp[kT] = {};
            size_t nd = 0;
            for (size_t j = 0; j < n; ++j) {
                if (s.sorted_rank[j] >= max_det) continue;
                const uint8_t* c = &s.sorted_codes[j * kCodes + static_cast<size_t>(a) * kT];
                for (int t = 0; t < kT; ++t) {
                    tp[t] += c[t] == kTp;
                    fp[t] += c[t] == kFp;
                    s.rc[static_cast<size_t>(t) * n + nd] = tp[t] / np_;
                    s.pr[static_cast<size_t>(t) * n + nd] = tp[t] / (fp[t] + tp[t] + eps);
                }
                ++nd;
            }
            for (int t = 0; t < kT; ++t) {
                // data() + offset, not &v[offset]: with no detections (n == 0) the vectors
                // are empty and v[0] would be out of range.
                double* rc = s.rc.data() + static_cast<size_t>(t) * n;
                double* pr = s.pr.data() + static_cast<size_t>(t) * n;
                out.recall[((static_cast<size_t>(t) * K + k) * kA + a) * kM + m] =
                    nd > 0 ? rc[nd - 1] : 0.0;
                // Precision envelope: make it non-increasing from the right.
                for (size_t i = nd; i-- > 1;) {
                    if (pr[i] > pr[i - 1]) pr[i - 1] = pr[i];
                }
                // q[r] = pr[first index with recall >= r]; thresholds beyond the last recall
                // stay 0 (the IndexError pycocotools catches).
                std::array<double, kR> q{};
                const double* idx = rc;
                for (int r = 0; r < kR; ++r) {
                    idx = std::lower_bound(idx, static_cast<const double*>(rc + nd),
                                           sh.rec_thrs[static_cast<size_t>(r)]);
                    if (idx == rc + nd) break;
                    q[static_cast<size_t>(r)] = pr[idx - rc];
                }
                for (int r = 0; r < kR; ++r) {
                    out.precision[(((static_cast<size_t>(t) * kR + r) * K + k) * kA + a) * kM + m] =
                        q[static_cast<size_t>(r)];
                }
            }
        }
    }
}

void evaluate_category(const Shared& sh, size_t k, Scratch& s) {
    const Members& gts = (*sh.gt_by_cat)[k];
    const Members& dts = (*sh.dt_by_cat)[k];
    s.scores.clear();
    s.rank.clear();
    s.codes.clear();
    int64_t npig[kA] = {0, 0, 0, 0};
    bool any = false;
    size_t gi = 0, di = 0;
    constexpr int32_t kNone = std::numeric_limits<int32_t>::max();
    while (gi < gts.size() || di < dts.size()) {
        int32_t gimg = gi < gts.size() ? gts[gi].first : kNone;
        int32_t dimg = di < dts.size() ? dts[di].first : kNone;
        int32_t img = std::min(gimg, dimg);
        size_t ge = gi, de = di;
        while (ge < gts.size() && gts[ge].first == img) ++ge;
        while (de < dts.size() && dts[de].first == img) ++de;
        evaluate_group(sh, gts, gi, ge, dts, di, de, s, npig);
        any = true;
        gi = ge;
        di = de;
    }
    // No (image, category) group with GT or detections: every entry stays -1.
    if (any) accumulate_category(sh, k, s, npig);
}

// One summarize() entry: mean of the selected slice's values > -1, or -1.
double summarize_one(const CocoEvalResult& r, bool ap, int t_index, int a, int m) {
    const size_t K = r.cat_ids.size();
    std::vector<double> vals;
    int t0 = t_index < 0 ? 0 : t_index;
    int t1 = t_index < 0 ? kT : t_index + 1;
    for (int t = t0; t < t1; ++t) {
        if (ap) {
            for (int rr = 0; rr < kR; ++rr) {
                for (size_t k = 0; k < K; ++k) {
                    double v = r.precision_at(t, rr, static_cast<int>(k), a, m);
                    if (v > -1) vals.push_back(v);
                }
            }
        } else {
            for (size_t k = 0; k < K; ++k) {
                double v = r.recall_at(t, static_cast<int>(k), a, m);
                if (v > -1) vals.push_back(v);
            }
        }
    }
    if (vals.empty()) return -1;
    return numpy_mean(vals);
}

int threshold_index(const CocoEvalResult& r, double thr) {
    // np.where(iouThr == p.iouThrs): exact equality, as pycocotools.
    for (int t = 0; t < kT; ++t) {
        if (r.iou_thrs[t] == thr) return t;
    }
    return -2;
}

double summarize_stat(const CocoEvalResult& r, bool ap, double iou_thr, int a, int m) {
    int t = -1;
    if (!std::isnan(iou_thr)) {
        t = threshold_index(r, iou_thr);
        if (t < 0) return -1;
    }
    return summarize_one(r, ap, t, a, m);
}

struct StatSpec {
    bool ap;
    double iou;  // NaN: all thresholds
    int area;
    int max_dets_index;
};

const StatSpec kStatSpecs[12] = {
    {true, NAN, 0, 2},  {true, 0.5, 0, 2},  {true, 0.75, 0, 2}, {true, NAN, 1, 2},
    {true, NAN, 2, 2},  {true, NAN, 3, 2},  {false, NAN, 0, 0}, {false, NAN, 0, 1},
    {false, NAN, 0, 2}, {false, NAN, 1, 2}, {false, NAN, 2, 2}, {false, NAN, 3, 2},
};

// _prepare: images and categories (sorted, unique) and GT and results bucketed by (category,
// image), file order kept inside a group. Fails, as loadRes does, on a result of an unknown image.
struct Prepared {
    std::vector<int64_t> img_ids, cat_ids;
    std::vector<Members> gt_by_cat, dt_by_cat;
    int64_t num_gt = 0, num_detections = 0;
};

Result<Prepared> prepare(const CocoDataset& gt, const std::vector<CocoAnnotation>& results,
                         const CocoEvalOptions& opts) {
    Prepared out;
    // COCO.loadRes: every result's image must be an image of the GT file.
    std::unordered_map<int64_t, int32_t> gt_images;
    gt_images.reserve(gt.images.size() * 2);
    for (const CocoImage& im : gt.images) gt_images.emplace(im.id, 0);
    for (size_t i = 0; i < results.size(); ++i) {
        if (!gt_images.count(results[i].image_id)) {
            return invalid(
                "result #{} has image_id {}, which is not an image of the ground truth "
                "(pycocotools: 'Results do not correspond to current coco set')",
                i, results[i].image_id);
        }
    }

    // params.imgIds / catIds: sorted and unique (np.unique in evaluate()).
    if (opts.img_ids.empty()) {
        for (const CocoImage& im : gt.images) out.img_ids.push_back(im.id);
    } else {
        out.img_ids = opts.img_ids;
    }
    std::sort(out.img_ids.begin(), out.img_ids.end());
    out.img_ids.erase(std::unique(out.img_ids.begin(), out.img_ids.end()), out.img_ids.end());
    for (const CocoCategory& c : gt.categories) out.cat_ids.push_back(c.id);
    std::sort(out.cat_ids.begin(), out.cat_ids.end());
    out.cat_ids.erase(std::unique(out.cat_ids.begin(), out.cat_ids.end()), out.cat_ids.end());
    if (out.img_ids.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
        return invalid("too many images ({})", out.img_ids.size());
    }

    const size_t K = out.cat_ids.size();
    std::unordered_map<int64_t, int32_t> img_index, cat_index;
    img_index.reserve(out.img_ids.size() * 2);
    for (size_t i = 0; i < out.img_ids.size(); ++i) {
        img_index.emplace(out.img_ids[i], static_cast<int32_t>(i));
    }
    for (size_t k = 0; k < K; ++k) cat_index.emplace(out.cat_ids[k], static_cast<int32_t>(k));

    // _prepare: group GT and results by (image, category), keeping file order inside a group.
    auto bucket = [&](const std::vector<CocoAnnotation>& anns, int64_t& count) {
        std::vector<Members> by_cat(K);
        for (size_t i = 0; i < anns.size(); ++i) {
            auto ii = img_index.find(anns[i].image_id);
            if (ii == img_index.end()) continue;
            auto kk = cat_index.find(anns[i].category_id);
            if (kk == cat_index.end()) continue;
            by_cat[static_cast<size_t>(kk->second)].emplace_back(ii->second,
                                                                 static_cast<uint32_t>(i));
            ++count;
        }
        // (image, file index) pairs: sorting them keeps file order within an image.
        for (Members& m : by_cat) std::sort(m.begin(), m.end());
        return by_cat;
    };
    std::vector<Members> gt_by_cat = bucket(gt.annotations, out.num_gt);
    std::vector<Members> dt_by_cat = bucket(results, out.num_detections);

    out.gt_by_cat = std::move(gt_by_cat);
    out.dt_by_cat = std::move(dt_by_cat);
    return out;
}

}  // namespace

double numpy_mean(const std::vector<double>& v) {
    // np.add.reduce walks the array in buffer-sized (8192) chunks, summing each pairwise.
    constexpr size_t kBuf = 8192;
    double sum = 0.0;
    for (size_t i = 0; i < v.size(); i += kBuf) {
        sum += pairwise_sum(v.data() + i, std::min(kBuf, v.size() - i));
    }
    return sum / static_cast<double>(v.size());
}

const std::array<const char*, 12>& coco_stat_names() {
    static const std::array<const char*, 12> names = {"AP",  "AP50", "AP75",  "APs", "APm", "APl",
                                                      "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"};
    return names;
}

Result<CocoEvalResult> coco_evaluate(const CocoDataset& gt,
                                     const std::vector<CocoAnnotation>& results,
                                     const CocoEvalOptions& opts) {
    CocoEvalResult out;
    out.iou_thrs = linspace<kT>(0.5, 0.95);
    out.rec_thrs = linspace<kR>(0.0, 1.0);

    LOWBIT_ASSIGN(Prepared pp, prepare(gt, results, opts));
    out.img_ids = std::move(pp.img_ids);
    out.cat_ids = std::move(pp.cat_ids);
    out.num_gt = pp.num_gt;
    out.num_detections = pp.num_detections;
    const size_t K = out.cat_ids.size();
    const std::vector<Members>& gt_by_cat = pp.gt_by_cat;
    const std::vector<Members>& dt_by_cat = pp.dt_by_cat;

    out.precision.assign(static_cast<size_t>(kT) * kR * K * kA * kM, -1.0);
    out.recall.assign(static_cast<size_t>(kT) * K * kA * kM, -1.0);

    Shared sh{&gt, &results, &gt_by_cat, &dt_by_cat, out.iou_thrs, out.rec_thrs, K, &out};
    ThreadPool pool(opts.n_threads);
    std::atomic<size_t> next{0};
    // Categories differ a lot in size (person vs toaster): workers pull them one at a time.
    int workers = static_cast<int>(std::min<size_t>(static_cast<size_t>(pool.size()), K));
    pool.parallel_for(workers, 1, [&](int64_t b, int64_t e) {
        Scratch scratch;
        for (int64_t w = b; w < e; ++w) {
            for (size_t k = next.fetch_add(1); k < K; k = next.fetch_add(1)) {
                evaluate_category(sh, k, scratch);
            }
        }
    });

    for (int i = 0; i < 12; ++i) {
        const StatSpec& sp = kStatSpecs[i];
        out.stats[static_cast<size_t>(i)] =
            summarize_stat(out, sp.ap, sp.iou, sp.area, sp.max_dets_index);
    }
    return out;
}

std::string coco_summary(const CocoEvalResult& r) {
    static const char* kAreaLabel[kA] = {"all", "small", "medium", "large"};
    std::string s;
    for (int i = 0; i < 12; ++i) {
        const StatSpec& sp = kStatSpecs[i];
        std::string iou = std::isnan(sp.iou)
                              ? fmt::format("{:0.2f}:{:0.2f}", r.iou_thrs[0], r.iou_thrs[kT - 1])
                              : fmt::format("{:0.2f}", sp.iou);
        s += fmt::format(" {:<18} {} @[ IoU={:<9} | area={:>6} | maxDets={:>3} ] = {:0.3f}\n",
                         sp.ap ? "Average Precision" : "Average Recall", sp.ap ? "(AP)" : "(AR)",
                         iou, kAreaLabel[sp.area], kMaxDets[sp.max_dets_index],
                         r.stats[static_cast<size_t>(i)]);
    }
    return s;
}

std::vector<double> coco_per_category_ap(const CocoEvalResult& r) {
    std::vector<double> ap(r.cat_ids.size(), -1.0);
    for (size_t k = 0; k < r.cat_ids.size(); ++k) {
        std::vector<double> vals;
        for (int t = 0; t < kT; ++t) {
            for (int rr = 0; rr < kR; ++rr) {
                double v = r.precision_at(t, rr, static_cast<int>(k), 0, kM - 1);
                if (v > -1) vals.push_back(v);
            }
        }
        if (!vals.empty()) ap[k] = numpy_mean(vals);
    }
    return ap;
}

}  // namespace lowbit

namespace lowbit {

Result<CocoImageMatches> coco_image_matches(const CocoDataset& gt,
                                            const std::vector<CocoAnnotation>& results,
                                            const CocoEvalOptions& opts) {
    LOWBIT_ASSIGN(Prepared pp, prepare(gt, results, opts));
    CocoImageMatches m;
    m.img_ids = pp.img_ids;
    const size_t K = pp.cat_ids.size(), n_img = pp.img_ids.size();
    m.cats.resize(K);
    CocoEvalResult unused;
    Shared sh{&gt,
              &results,
              &pp.gt_by_cat,
              &pp.dt_by_cat,
              linspace<kT>(0.5, 0.95),
              linspace<kR>(0.0, 1.0),
              K,
              &unused};
    ThreadPool pool(opts.n_threads);
    std::atomic<size_t> next{0};
    int workers = static_cast<int>(std::min<size_t>(static_cast<size_t>(pool.size()), K));
    pool.parallel_for(std::max(workers, 1), 1, [&](int64_t b, int64_t e) {
        Scratch s;
        for (int64_t w = b; w < e; ++w) {
            for (size_t k = next.fetch_add(1); k < K; k = next.fetch_add(1)) {
                const Members& gts = pp.gt_by_cat[k];
                const Members& dts = pp.dt_by_cat[k];
                CocoImageMatches::Category& c = m.cats[k];
                c.begin.assign(n_img + 1, 0);
                c.npig.assign(n_img, 0);
                s.scores.clear();
                s.rank.clear();
                s.codes.clear();
                // Per image with a group: where its detections end (groups come in image order,
                // so an image's start is the previous image's end).
                std::vector<uint32_t> end_of(n_img, std::numeric_limits<uint32_t>::max());
                size_t gi = 0, di = 0;
                while (gi < gts.size() || di < dts.size()) {
                    constexpr int32_t kNone = std::numeric_limits<int32_t>::max();
                    int32_t img = std::min(gi < gts.size() ? gts[gi].first : kNone,
                                           di < dts.size() ? dts[di].first : kNone);
                    size_t ge = gi, de = di;
                    while (ge < gts.size() && gts[ge].first == img) ++ge;
                    while (de < dts.size() && dts[de].first == img) ++de;
                    int64_t npig[kA] = {0, 0, 0, 0};
                    evaluate_group(sh, gts, gi, ge, dts, di, de, s, npig);
                    c.npig[static_cast<size_t>(img)] = npig[0];
                    end_of[static_cast<size_t>(img)] = static_cast<uint32_t>(s.scores.size());
                    gi = ge;
                    di = de;
                }
                uint32_t prev = 0;
                for (size_t i = 0; i < n_img; ++i) {
                    c.begin[i] = prev;
                    if (end_of[i] != std::numeric_limits<uint32_t>::max()) prev = end_of[i];
                }
                c.begin[n_img] = static_cast<uint32_t>(s.scores.size());
                c.scores = s.scores;
                c.codes.resize(s.scores.size() * kT);
                for (size_t d = 0; d < s.scores.size(); ++d) {
                    for (int t = 0; t < kT; ++t) {
                        c.codes[d * kT + t] = s.codes[(d * kA + 0) * kT + t];  // area all
                    }
                }
            }
        }
    });
    return m;
}

double coco_resampled_map(const CocoImageMatches& m, const std::vector<int32_t>& counts) {
    const std::array<double, kR> rec = linspace<kR>(0.0, 1.0);
    const double eps = std::numeric_limits<double>::epsilon();
    double total = 0;
    int64_t valid = 0;
    std::vector<uint32_t> dets, order;
    std::vector<double> rc, pr;
    for (const CocoImageMatches::Category& c : m.cats) {
        int64_t np_ = 0;
        dets.clear();
        for (size_t i = 0; i < counts.size() && i + 1 < c.begin.size(); ++i) {
            np_ += static_cast<int64_t>(counts[i]) * c.npig[i];
            for (int32_t copy = 0; copy < counts[i]; ++copy) {
                for (uint32_t d = c.begin[i]; d < c.begin[i + 1]; ++d) dets.push_back(d);
            }
        }
        if (np_ == 0) continue;  // no GT: -1, left out of the mean
        ++valid;
        order.resize(dets.size());
        for (size_t j = 0; j < dets.size(); ++j) order[j] = static_cast<uint32_t>(j);
        std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
            return c.scores[dets[a]] > c.scores[dets[b]];
        });
        const size_t n = dets.size();
        rc.resize(n);
        pr.resize(n);
        for (int t = 0; t < kT; ++t) {
            double tp = 0, fp = 0;
            for (size_t j = 0; j < n; ++j) {
                const uint8_t code = c.codes[static_cast<size_t>(dets[order[j]]) * kT + t];
                tp += code == kTp;
                fp += code == kFp;
                rc[j] = tp / static_cast<double>(np_);
                pr[j] = tp / (fp + tp + eps);
            }
            for (size_t i = n; i-- > 1;) {
                if (pr[i] > pr[i - 1]) pr[i - 1] = pr[i];
            }
            const double* idx = rc.data();
            for (int r = 0; r < kR; ++r) {
                idx = std::lower_bound(idx, static_cast<const double*>(rc.data() + n),
                                       rec[static_cast<size_t>(r)]);
                if (idx == rc.data() + n) break;
                total += pr[static_cast<size_t>(idx - rc.data())];
            }
        }
    }
    if (valid == 0) return -1.0;
    return total / static_cast<double>(valid * kT * kR);
}

std::vector<std::vector<int32_t>> bootstrap_counts(size_t n, int resamples, uint64_t seed) {
    std::vector<std::vector<int32_t>> out(static_cast<size_t>(std::max(resamples, 0)));
    uint64_t state = seed;
    auto next = [&]() {  // splitmix64
        uint64_t z = (state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    };
    for (std::vector<int32_t>& c : out) {
        c.assign(n, 0);
        for (size_t j = 0; j < n; ++j) ++c[static_cast<size_t>(next() % n)];
    }
    return out;
}

double percentile(std::vector<double> v, double q) {
    if (v.empty()) return NAN;
    std::sort(v.begin(), v.end());
    const double pos = q / 100.0 * static_cast<double>(v.size() - 1);
    const size_t i = static_cast<size_t>(std::floor(pos));
    if (i + 1 >= v.size()) return v.back();
    const double f = pos - static_cast<double>(i);
    return v[i] + (v[i + 1] - v[i]) * f;
}

Result<BootstrapResult> bootstrap_map(const CocoDataset& gt,
                                      const std::vector<CocoAnnotation>& results,
                                      const CocoEvalOptions& opts, int resamples, uint64_t seed) {
    BootstrapResult b;
    b.resamples = resamples;
    b.seed = seed;
    if (resamples <= 0) return b;
    LOWBIT_ASSIGN(CocoImageMatches m, coco_image_matches(gt, results, opts));
    const std::vector<std::vector<int32_t>> sets =
        bootstrap_counts(m.img_ids.size(), resamples, seed);
    b.values.assign(sets.size(), 0.0);
    ThreadPool pool(opts.n_threads);
    pool.parallel_for(static_cast<int64_t>(sets.size()), 1, [&](int64_t s, int64_t e) {
        for (int64_t r = s; r < e; ++r) {
            b.values[static_cast<size_t>(r)] = coco_resampled_map(m, sets[static_cast<size_t>(r)]);
        }
    });
    b.lo = percentile(b.values, 2.5);
    b.hi = percentile(b.values, 97.5);
    return b;
}

}  // namespace lowbit
