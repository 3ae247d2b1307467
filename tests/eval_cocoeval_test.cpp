#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "data/coco.h"
#include "eval/cocoeval.h"

namespace lowbit {
namespace {

CocoDataset one_image_gt() {
    auto gt = parse_coco_gt(R"({
        "images": [{"id": 7, "file_name": "a.jpg", "width": 100, "height": 100},
                   {"id": 3, "file_name": "b.jpg"}],
        "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
        "annotations": [
          {"id": 1, "image_id": 7, "category_id": 1, "bbox": [10, 10, 20, 20], "area": 400,
           "iscrowd": 0, "segmentation": [[10, 10, 30, 10, 30, 30]]},
          {"id": 2, "image_id": 7, "category_id": 1, "bbox": [50, 50, 40, 40], "area": 1600,
           "iscrowd": 1, "segmentation": {"counts": [1, 2, 3], "size": [100, 100]}}
        ]})",
                            "gt");
    EXPECT_TRUE(gt.is_ok()) << gt.status().message();
    return *gt;
}

CocoAnnotation det(int64_t img, int64_t cat, double x, double y, double w, double h, double s) {
    CocoAnnotation a;
    a.image_id = img;
    a.category_id = cat;
    a.bbox = {x, y, w, h};
    a.area = w * h;
    a.score = s;
    return a;
}

TEST(CocoEval, ThresholdsAreNumpyLinspace) {
    auto r = coco_evaluate(one_image_gt(), {});
    ASSERT_TRUE(r.is_ok());
    // np.linspace(.5, .95, 10) bit patterns (0.75 must compare equal for AP75).
    EXPECT_EQ(r->iou_thrs[0], 0.5);
    EXPECT_EQ(r->iou_thrs[5], 0.75);
    EXPECT_EQ(r->iou_thrs[1], 0x1.199999999999ap-1);
    EXPECT_EQ(r->iou_thrs[9], 0.95);
    EXPECT_EQ(r->rec_thrs[100], 1.0);
    EXPECT_EQ(r->rec_thrs[37], 37 * 0.01);
}

TEST(CocoEval, PerfectAndCrowdAndEmpty) {
    CocoDataset gt = one_image_gt();
    // A perfect match, plus a detection inside the crowd region (ignored, not a FP).
    std::vector<CocoAnnotation> dt = {det(7, 1, 10, 10, 20, 20, 0.9),
                                      det(7, 1, 55, 55, 10, 10, 0.95)};
    auto r = coco_evaluate(gt, dt);
    ASSERT_TRUE(r.is_ok()) << r.status().message();
    EXPECT_DOUBLE_EQ(r->stats[0], 1.0);
    EXPECT_DOUBLE_EQ(r->stats[1], 1.0);
    EXPECT_DOUBLE_EQ(r->stats[3], 1.0);   // the GT (area 400) is small
    EXPECT_DOUBLE_EQ(r->stats[4], -1.0);  // no medium GT (the crowd is ignored)
    EXPECT_DOUBLE_EQ(r->stats[8], 1.0);
    EXPECT_EQ(r->num_gt, 2);
    EXPECT_EQ(r->num_detections, 2);
    // Category 2 has no GT: -1 in its own AP, excluded from the means.
    auto per_cat = coco_per_category_ap(*r);
    EXPECT_DOUBLE_EQ(per_cat[0], 1.0);
    EXPECT_DOUBLE_EQ(per_cat[1], -1.0);

    // A false positive scored above the true positive halves precision at recall 1.
    dt.push_back(det(7, 1, 0, 70, 5, 5, 0.99));
    r = coco_evaluate(gt, dt);
    ASSERT_TRUE(r.is_ok());
    // Precision 1 / (1 + 1 + eps) at every recall threshold (the ignored detection counts
    // neither way).
    EXPECT_EQ(r->stats[1], 1.0 / (2.0 + 2.220446049250313e-16));

    auto empty = coco_evaluate(gt, {});
    ASSERT_TRUE(empty.is_ok());
    EXPECT_DOUBLE_EQ(empty->stats[0], 0.0);
    EXPECT_DOUBLE_EQ(empty->stats[4], -1.0);
}

TEST(CocoEval, RejectsResultsForUnknownImages) {
    auto r = coco_evaluate(one_image_gt(), {det(12345, 1, 0, 0, 1, 1, 0.5)});
    ASSERT_FALSE(r.is_ok());
    EXPECT_NE(r.status().message().find("12345"), std::string::npos);
}

TEST(CocoEval, ImgIdsRestrictEvaluation) {
    CocoDataset gt = one_image_gt();
    CocoEvalOptions o;
    o.img_ids = {3};  // the image without GT
    auto r = coco_evaluate(gt, {det(7, 1, 10, 10, 20, 20, 0.9)}, o);
    ASSERT_TRUE(r.is_ok());
    EXPECT_DOUBLE_EQ(r->stats[0], -1.0);
    EXPECT_EQ(r->num_detections, 0);
}

TEST(CocoEval, SummaryFormat) {
    auto r = coco_evaluate(one_image_gt(), {});
    ASSERT_TRUE(r.is_ok());
    std::string s = coco_summary(*r);
    EXPECT_NE(s.find(" Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] "
                     "= 0.000\n"),
              std::string::npos);
    EXPECT_NE(s.find(" Average Recall     (AR) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ] "
                     "= -1.000\n"),
              std::string::npos);
}

TEST(CocoEval, NumpyMeanIsPairwiseInBlocks) {
    // 1 + 1e-16 * n: pairwise and naive summation differ; the exact value depends on order.
    std::vector<double> v(20000, 1e-16);
    v[0] = 1.0;
    double naive = 0;
    for (double x : v) naive += x;
    EXPECT_EQ(naive, 1.0);                     // every 1e-16 is lost naively
    EXPECT_GT(numpy_mean(v) * v.size(), 1.0);  // pairwise keeps them
}

TEST(CocoJson, ParsesAndRejects) {
    auto res = parse_coco_results(
        R"([{"image_id": 7, "category_id": 1.0, "bbox": [1, 2, 3, 4], "score": 0.5,
             "segmentation": [[1, 2]]}])",
        "dt");
    ASSERT_TRUE(res.is_ok()) << res.status().message();
    ASSERT_EQ(res->size(), 1u);
    EXPECT_EQ((*res)[0].id, 1);
    EXPECT_DOUBLE_EQ((*res)[0].area, 12.0);
    EXPECT_EQ((*res)[0].category_id, 1);
    EXPECT_TRUE(parse_coco_results("[]", "dt").is_ok());

    auto bad = parse_coco_results(R"([{"image_id": 7, "category_id": 1, "score": 1}])", "x.json");
    ASSERT_FALSE(bad.is_ok());
    EXPECT_NE(bad.status().message().find("x.json: results[0]"), std::string::npos);
    EXPECT_NE(bad.status().message().find("bbox"), std::string::npos);
    EXPECT_FALSE(parse_coco_results(R"({"a": 1})", "x").is_ok());
    EXPECT_FALSE(parse_coco_results(R"([1, 2])", "x").is_ok());
    EXPECT_FALSE(parse_coco_results(R"([{"image_id": 1.5, "category_id": 1, "bbox": [1,2,3,4],
                                        "score": 1}])",
                                    "x")
                     .is_ok());
    EXPECT_FALSE(parse_coco_results(R"([{"image_id": 1, "category_id": 1, "bbox": [1,2,3],
                                        "score": 1}])",
                                    "x")
                     .is_ok());
    auto trunc = parse_coco_results(R"([{"image_id": 1, )", "t.json");
    ASSERT_FALSE(trunc.is_ok());
    EXPECT_NE(trunc.status().message().find("t.json: malformed JSON"), std::string::npos);

    auto gt_no_area = parse_coco_gt(R"({"images": [], "categories": [], "annotations": [
        {"id": 5, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]}]})",
                                    "g.json");
    ASSERT_FALSE(gt_no_area.is_ok());
    EXPECT_NE(gt_no_area.status().message().find("annotations[0] (id 5)"), std::string::npos);
    EXPECT_FALSE(parse_coco_gt(R"({"images": [], "annotations": []})", "g").is_ok());
    EXPECT_FALSE(parse_coco_gt("[]", "g").is_ok());
}

TEST(CocoJson, ResultsRoundTrip) {
    std::vector<CocoAnnotation> v = {det(1, 2, 0.1, 1.0 / 3.0, 123.456, 1e-7, 0.000158116)};
    auto back = parse_coco_results(coco_results_to_json(v), "rt");
    ASSERT_TRUE(back.is_ok());
    for (int i = 0; i < 4; ++i) EXPECT_EQ((*back)[0].bbox[i], v[0].bbox[i]);
    EXPECT_EQ((*back)[0].score, v[0].score);
}

}  // namespace
}  // namespace lowbit
