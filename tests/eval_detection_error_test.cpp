// The task-aware detection error (eval/detection_error.h) on hand-computed small cases.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "eval/detection_error.h"

namespace lowbit::eval {
namespace {

DenseDecoded dense(std::vector<float> boxes, std::vector<float> scores, int nc) {
    DenseDecoded d;
    d.num_classes = nc;
    d.rows = static_cast<int64_t>(boxes.size() / 4);
    d.boxes = std::move(boxes);
    d.scores = std::move(scores);
    return d;
}

TEST(DetectionError, DenseHandComputed) {
    // Anchor 0: confident (0.8), its score drops to 0.6 and its left edge moves 2 px on a 16 px
    // box. Anchor 1: nothing in the reference, the candidate invents a 0.5 class-1 score.
    const DenseDecoded ref = dense({0, 0, 16, 16, 0, 0, 4, 4}, {0.8f, 0.1f, 0.0f, 0.0f}, 2);
    const DenseDecoded q = dense({2, 0, 16, 16, 0, 0, 4, 4}, {0.6f, 0.1f, 0.0f, 0.5f}, 2);
    auto e = dense_detection_error(ref, q);
    ASSERT_TRUE(e.is_ok()) << e.status().message();
    // score: 0.8 * 0.2^2 + 0.5 * 0.5^2 = 0.032 + 0.125; box: 0.8 * (2 / 16)^2.
    EXPECT_NEAR(e->score, 0.157, 1e-6);
    EXPECT_NEAR(e->box, 0.8 * 0.015625, 1e-7);
    EXPECT_NEAR(e->total(), 0.157 + 0.0125, 1e-6);

    // Identical outputs: zero.
    auto z = dense_detection_error(ref, ref);
    ASSERT_TRUE(z.is_ok());
    EXPECT_EQ(z->total(), 0.0);

    // Box errors are relative to max(8 px, the reference size) and capped at 1 per coordinate.
    const DenseDecoded far = dense({100, 0, 16, 16, 0, 0, 4, 4}, {0.8f, 0.1f, 0.0f, 0.0f}, 2);
    auto f = dense_detection_error(ref, far);
    ASSERT_TRUE(f.is_ok());
    EXPECT_NEAR(f->box, 0.8, 1e-7);
    EXPECT_NEAR(f->score, 0.0, 1e-12);

    // Mismatched shapes are an error.
    EXPECT_FALSE(dense_detection_error(ref, dense({0, 0, 1, 1}, {0.f, 0.f}, 2)).is_ok());
}

Detection det(float x1, float y1, float x2, float y2, float s, int c) {
    return Detection{{x1, y1, x2, y2}, s, c};
}

TEST(DetectionError, EndToEndHandComputed) {
    std::vector<Detection> ref = {det(20, 20, 40, 40, 0.5f, 1), det(0, 0, 10, 10, 0.9f, 0),
                                  det(0, 0, 0, 0, 0.0f, 0)};
    std::vector<Detection> q = {det(50, 50, 60, 60, 0.3f, 2), det(0, 0, 10, 12, 0.7f, 0),
                                det(0, 0, 0, 0, 0.0f, 0)};
    const DetectionError e = e2e_detection_error(ref, q);
    // Matched (IoU 100/120): w 0.9, score 0.9 * 0.2^2, box 0.9 * (2/10)^2. Unmatched reference
    // 0.5: 0.5^3 and 0.5 * 4; unmatched candidate 0.3: 0.3^3 and 0.3 * 4; zero rows add 0.
    EXPECT_NEAR(e.score, 0.036 + 0.125 + 0.027, 1e-6);
    EXPECT_NEAR(e.box, 0.036 + 2.0 + 1.2, 1e-6);

    // Same box, other class: no match, both rows lost.
    const DetectionError c =
        e2e_detection_error({det(0, 0, 10, 10, 0.9f, 0)}, {det(0, 0, 10, 10, 0.9f, 3)});
    EXPECT_NEAR(c.score, 2 * 0.729, 1e-6);
    EXPECT_NEAR(c.box, 2 * 3.6, 1e-6);
    EXPECT_EQ(e2e_detection_error(ref, ref).total(), 0.0);
}

// The comparator on a raw DFL tensor (imgsz 32: 16 + 4 + 1 anchors, one class): the box comes
// from the bin expectation, the score from the sigmoid.
TEST(DetectionError, ComparatorDflHead) {
    const int64_t rows = 21, ch = 65;
    auto make = [&](int bin, float logit) {
        Tensor t(DType::Float32, {1, ch, rows});
        float* p = t.data<float>();
        for (int64_t i = 0; i < ch * rows; ++i) p[i] = -30.0f;  // far-below-threshold
        for (int side = 0; side < 4; ++side) p[(side * 16 + bin) * rows + 0] = 30.0f;
        p[64 * rows + 0] = logit;
        return t;
    };
    const Tensor ref = make(1, 0.0f);  // anchor 0 (centre 4,4, stride 8): 1 bin a side, p 0.5
    auto cmp = DetectionComparator::create("out", ref, 32, HeadKind::Auto, ScoreMode::Auto, 1);
    ASSERT_TRUE(cmp.is_ok()) << cmp.status().message();
    EXPECT_EQ(cmp->layout().kind, HeadKind::Dfl);
    ASSERT_TRUE(cmp->set_reference(ref).is_ok());

    auto dd = decode_dense(ref, cmp->layout(), 32, true);
    ASSERT_TRUE(dd.is_ok());
    EXPECT_NEAR(dd->boxes[0], -4.0f, 1e-4);  // 4 - 1 * 8
    EXPECT_NEAR(dd->boxes[2], 12.0f, 1e-4);
    EXPECT_NEAR(dd->scores[0], 0.5f, 1e-6);

    // Two bins a side (box 32 px wide, reference 16): each coordinate moves 8 px on a 16 px
    // reference -> (1/2)^2; the score goes to sigmoid(2).
    const Tensor q = make(2, 2.0f);
    auto e = cmp->compare(q);
    ASSERT_TRUE(e.is_ok()) << e.status().message();
    const double pq = 1.0 / (1.0 + std::exp(-2.0));
    EXPECT_NEAR(e->score, pq * (pq - 0.5) * (pq - 0.5), 1e-6);
    EXPECT_NEAR(e->box, pq * 4 * 0.25, 1e-5);
}

}  // namespace
}  // namespace lowbit::eval
