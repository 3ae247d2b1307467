// The bootstrap of mAP50-95 (eval/cocoeval.h): each resample against the slow reference --
// COCOeval on a data set where image i appears counts[i] times under new ids.
#include <gtest/gtest.h>

#include <random>

#include "eval/cocoeval.h"

namespace lowbit {
namespace {

// Random GT (some crowd) and detections near them, 3 categories (one without GT), 24 images.
void synthetic(CocoDataset& gt, std::vector<CocoAnnotation>& dt) {
    std::mt19937 rng(7);
    std::uniform_real_distribution<double> u(0, 1);
    for (int c = 1; c <= 3; ++c) gt.categories.push_back({c, "c" + std::to_string(c)});
    int64_t ann = 1, det = 1;
    for (int64_t im = 1; im <= 24; ++im) {
        gt.images.push_back({im * 10, "x.jpg", 200, 200});
        const int n = static_cast<int>(u(rng) * 5);
        for (int g = 0; g < n; ++g) {
            CocoAnnotation a;
            a.id = ann++;
            a.image_id = im * 10;
            a.category_id = 1 + static_cast<int>(u(rng) * 2);  // 1 or 2; 3 has none
            a.bbox = {u(rng) * 150, u(rng) * 150, 5 + u(rng) * 60, 5 + u(rng) * 60};
            a.area = a.bbox[2] * a.bbox[3];
            a.iscrowd = u(rng) < 0.1;
            gt.annotations.push_back(a);
            if (u(rng) < 0.8) {
                CocoAnnotation d = a;
                d.id = det++;
                d.iscrowd = false;
                for (double& v : d.bbox) v += (u(rng) - 0.5) * 12;
                d.bbox[2] = std::max(1.0, d.bbox[2]);
                d.bbox[3] = std::max(1.0, d.bbox[3]);
                d.area = d.bbox[2] * d.bbox[3];
                d.score = u(rng);
                dt.push_back(d);
            }
        }
        for (int f = 0; f < 2; ++f) {  // false positives, category 3 among them
            CocoAnnotation d;
            d.id = det++;
            d.image_id = im * 10;
            d.category_id = 1 + static_cast<int>(u(rng) * 3);
            d.bbox = {u(rng) * 150, u(rng) * 150, 5 + u(rng) * 40, 5 + u(rng) * 40};
            d.area = d.bbox[2] * d.bbox[3];
            d.score = u(rng);
            dt.push_back(d);
        }
    }
}

double slow_resample(const CocoDataset& gt, const std::vector<CocoAnnotation>& dt,
                     const std::vector<int64_t>& ids, const std::vector<int32_t>& counts) {
    CocoDataset g;
    g.categories = gt.categories;
    std::vector<CocoAnnotation> d;
    int64_t next_img = 1, next_ann = 1, next_det = 1;
    for (size_t i = 0; i < ids.size(); ++i) {
        for (int32_t c = 0; c < counts[i]; ++c) {
            const int64_t nid = next_img++;
            g.images.push_back({nid, "x.jpg", 200, 200});
            for (const CocoAnnotation& a : gt.annotations) {
                if (a.image_id != ids[i]) continue;
                CocoAnnotation b = a;
                b.id = next_ann++;
                b.image_id = nid;
                g.annotations.push_back(b);
            }
            for (const CocoAnnotation& a : dt) {
                if (a.image_id != ids[i]) continue;
                CocoAnnotation b = a;
                b.id = next_det++;
                b.image_id = nid;
                d.push_back(b);
            }
        }
    }
    auto r = coco_evaluate(g, d);
    EXPECT_TRUE(r.is_ok());
    return r->stats[0];
}

TEST(CocoBootstrap, ResamplesEqualCocoevalOnCopiedImages) {
    CocoDataset gt;
    std::vector<CocoAnnotation> dt;
    synthetic(gt, dt);
    auto m = coco_image_matches(gt, dt);
    ASSERT_TRUE(m.is_ok()) << m.status().message();
    ASSERT_EQ(m->img_ids.size(), 24u);

    // All ones: COCOeval itself.
    auto full = coco_evaluate(gt, dt);
    ASSERT_TRUE(full.is_ok());
    EXPECT_NEAR(coco_resampled_map(*m, std::vector<int32_t>(24, 1)), full->stats[0], 1e-12);
    EXPECT_GT(full->stats[0], 0.05);

    const auto sets = bootstrap_counts(24, 12, 3);
    ASSERT_EQ(sets.size(), 12u);
    int differs = 0;
    for (const auto& c : sets) {
        int sum = 0;
        for (int32_t v : c) sum += v;
        EXPECT_EQ(sum, 24);
        const double fast = coco_resampled_map(*m, c);
        EXPECT_NEAR(fast, slow_resample(gt, dt, m->img_ids, c), 1e-12);
        differs += std::abs(fast - full->stats[0]) > 1e-9;
    }
    EXPECT_GT(differs, 6);  // resampling changes the value

    // Same seed, same sets; another seed, other sets.
    EXPECT_EQ(bootstrap_counts(24, 12, 3), sets);
    EXPECT_NE(bootstrap_counts(24, 12, 4), sets);

    auto b = bootstrap_map(gt, dt, {}, 200, 0);
    ASSERT_TRUE(b.is_ok());
    ASSERT_EQ(b->values.size(), 200u);
    EXPECT_LT(b->lo, full->stats[0]);
    EXPECT_GT(b->hi, full->stats[0]);
    EXPECT_LT(b->lo, b->hi);
}

TEST(CocoBootstrap, Percentile) {
    EXPECT_DOUBLE_EQ(percentile({4, 1, 3, 2}, 50), 2.5);
    EXPECT_DOUBLE_EQ(percentile({0, 10}, 2.5), 0.25);
    EXPECT_DOUBLE_EQ(percentile({0, 10}, 100), 10);
}

}  // namespace
}  // namespace lowbit
