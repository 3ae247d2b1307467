#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "eval/class_map.h"
#include "eval/decode.h"
#include "eval/latency.h"

namespace lowbit {
namespace {

// A [1, C, 8400] float32 head output filled with `fill`.
Tensor head(int64_t channels, float fill) {
    Tensor t(DType::Float32, {1, channels, 8400});
    for (float& v : t.span<float>()) v = fill;
    return t;
}
void set(Tensor& t, int64_t c, int64_t a, float v) {
    t.data<float>()[c * 8400 + a] = v;
}

TEST(Decode, AnchorCount) {
    EXPECT_EQ(anchor_count(640), 8400);
    EXPECT_EQ(anchor_count(320), 2100);
}

TEST(Decode, LayoutDetection) {
    auto dfl = detect_head_layout("o", {1, 144, 8400}, 640);
    ASSERT_TRUE(dfl.is_ok());
    EXPECT_EQ(dfl->kind, HeadKind::Dfl);
    EXPECT_EQ(dfl->num_classes, 80);
    EXPECT_TRUE(dfl->channels_first);

    auto dfl_t = detect_head_layout("o", {1, 8400, 144}, 640);
    ASSERT_TRUE(dfl_t.is_ok());
    EXPECT_FALSE(dfl_t->channels_first);

    auto dec = detect_head_layout("o", {1, 84, 8400}, 640);
    ASSERT_TRUE(dec.is_ok());
    EXPECT_EQ(dec->kind, HeadKind::Decoded);
    EXPECT_EQ(dec->num_classes, 80);

    auto e2e = detect_head_layout("o", {1, 300, 6}, 640);
    ASSERT_TRUE(e2e.is_ok());
    EXPECT_EQ(e2e->kind, HeadKind::EndToEnd);
    EXPECT_EQ(e2e->num_rows, 300);

    // Non-COCO class counts are resolved with the annotation's category count.
    auto ten = detect_head_layout("o", {1, 74, 8400}, 640, HeadKind::Auto, 10);
    ASSERT_TRUE(ten.is_ok());
    EXPECT_EQ(ten->kind, HeadKind::Dfl);
    EXPECT_EQ(ten->num_classes, 10);
    auto ten_dec = detect_head_layout("o", {1, 14, 8400}, 640, HeadKind::Auto, 10);
    ASSERT_TRUE(ten_dec.is_ok());
    EXPECT_EQ(ten_dec->kind, HeadKind::Decoded);

    // Forced layouts.
    auto forced = detect_head_layout("o", {1, 84, 8400}, 640, HeadKind::Dfl);
    ASSERT_TRUE(forced.is_ok());
    EXPECT_EQ(forced->num_classes, 20);

    auto bad = detect_head_layout("weird", {1, 7, 4}, 640);
    ASSERT_FALSE(bad.is_ok());
    EXPECT_NE(bad.status().message().find("weird"), std::string::npos);
    EXPECT_NE(bad.status().message().find("[1,7,4]"), std::string::npos);
    auto ambiguous = detect_head_layout("amb", {1, 100, 8400}, 640);
    ASSERT_FALSE(ambiguous.is_ok());
    EXPECT_NE(ambiguous.status().message().find("--head"), std::string::npos);
    EXPECT_FALSE(detect_head_layout("o", {1, 144, 8400}, 320).is_ok());  // wrong imgsz
    EXPECT_FALSE(detect_head_layout("o", {1, 84, 8400}, 640, HeadKind::EndToEnd).is_ok());
}

TEST(Decode, DflBoxesAnchorsAndScores) {
    // Uniform DFL logits: every side's expected distance is exactly 7.5 grid units.
    Tensor t = head(144, 0.0f);
    for (int64_t c = 64; c < 144; ++c) {
        for (int64_t a = 0; a < 8400; ++a) set(t, c, a, -30.0f);  // sigmoid ~ 1e-13
    }
    set(t, 64 + 3, 0, 2.0f);                  // anchor 0 (stride 8, cell 0,0): class 3
    set(t, 64 + 5, 6400 + 41, 1.0f);          // stride 16, row 1, col 1: class 5
    set(t, 64 + 7, 8000 + 20 * 3 + 2, 0.0f);  // stride 32, row 3, col 2: class 7, p 0.5
    auto layout = detect_head_layout("o", t.shape(), 640);
    ASSERT_TRUE(layout.is_ok());
    DecodeOptions opts;
    opts.conf = 0.25f;
    auto dets = decode_detections(t, *layout, 640, opts);
    ASSERT_TRUE(dets.is_ok()) << dets.status().message();
    ASSERT_EQ(dets->size(), 3u);
    const Detection& d0 = (*dets)[0];  // highest score first
    EXPECT_EQ(d0.cls, 3);
    EXPECT_FLOAT_EQ(d0.score, 1.0f / (1.0f + std::exp(-2.0f)));
    EXPECT_FLOAT_EQ(d0.box[0], 4.0f - 7.5f * 8);
    EXPECT_FLOAT_EQ(d0.box[1], 4.0f - 7.5f * 8);
    EXPECT_FLOAT_EQ(d0.box[2], 4.0f + 7.5f * 8);
    EXPECT_FLOAT_EQ(d0.box[3], 4.0f + 7.5f * 8);
    const Detection& d1 = (*dets)[1];
    EXPECT_EQ(d1.cls, 5);
    EXPECT_FLOAT_EQ(d1.box[0], 24.0f - 120.0f);
    EXPECT_FLOAT_EQ(d1.box[3], 24.0f + 120.0f);
    const Detection& d2 = (*dets)[2];
    EXPECT_EQ(d2.cls, 7);
    EXPECT_FLOAT_EQ(d2.score, 0.5f);
    EXPECT_FLOAT_EQ(d2.box[0], 2.5f * 32 - 7.5f * 32);
    EXPECT_FLOAT_EQ(d2.box[1], 3.5f * 32 - 7.5f * 32);

    // A peaked distribution: bin 4 dominates the left side of anchor 0.
    set(t, 0 * 16 + 4, 0, 40.0f);
    dets = decode_detections(t, *layout, 640, opts);
    ASSERT_TRUE(dets.is_ok());
    EXPECT_NEAR((*dets)[0].box[0], 4.0f - 4.0f * 8, 1e-4);
}

TEST(Decode, ConfIsInclusiveAndTopK) {
    Tensor t = head(84, 0.0f);  // decoded layout, probabilities
    for (int64_t a = 0; a < 8400; ++a) {
        set(t, 0, a, 100.0f + a);
        set(t, 1, a, 100.0f);
        set(t, 2, a, 10.0f);
        set(t, 3, a, 20.0f);
    }
    set(t, 4 + 1, 10, 0.5f);
    set(t, 4 + 2, 11, 0.25f);  // == conf: kept
    set(t, 4 + 2, 12, 0.2499f);
    auto layout = detect_head_layout("o", t.shape(), 640);
    ASSERT_TRUE(layout.is_ok());
    EXPECT_TRUE(class_values_are_probabilities(t, *layout));
    DecodeOptions opts;
    opts.conf = 0.25f;
    opts.apply_sigmoid = false;
    auto dets = decode_detections(t, *layout, 640, opts);
    ASSERT_TRUE(dets.is_ok());
    ASSERT_EQ(dets->size(), 2u);
    EXPECT_EQ((*dets)[0].cls, 1);
    EXPECT_FLOAT_EQ((*dets)[0].box[0], 110.0f - 5.0f);
    EXPECT_FLOAT_EQ((*dets)[0].box[1], 90.0f);
    EXPECT_FLOAT_EQ((*dets)[0].box[2], 115.0f);
    EXPECT_FLOAT_EQ((*dets)[0].box[3], 110.0f);
    EXPECT_FLOAT_EQ((*dets)[1].score, 0.25f);
    opts.pre_nms_topk = 1;
    dets = decode_detections(t, *layout, 640, opts);
    ASSERT_TRUE(dets.is_ok());
    EXPECT_EQ(dets->size(), 1u);

    set(t, 4, 0, 1.5f);
    EXPECT_FALSE(class_values_are_probabilities(t, *layout));
}

TEST(Decode, EndToEndRowsNoNms) {
    Tensor t(DType::Float32, {1, 4, 6});
    std::vector<float> rows = {0, 0, 10, 10, 0.9f,  2, 0, 0, 10, 10, 0.0005f, 1,
                               0, 0, 10, 10, 0.95f, 2, 1, 1, 11, 11, 0.9f,    7};
    std::copy(rows.begin(), rows.end(), t.data<float>());
    auto layout = detect_head_layout("output0", t.shape(), 640);
    ASSERT_TRUE(layout.is_ok());
    DecodeOptions opts;
    auto dets = decode_detections(t, *layout, 640, opts);
    ASSERT_TRUE(dets.is_ok());
    ASSERT_EQ(dets->size(), 3u);  // identical boxes survive: no NMS
    EXPECT_FLOAT_EQ((*dets)[0].score, 0.95f);
    EXPECT_EQ((*dets)[1].cls, 2);  // ties keep row order
    EXPECT_EQ((*dets)[2].cls, 7);
    opts.max_det = 2;
    dets = decode_detections(t, *layout, 640, opts);
    ASSERT_TRUE(dets.is_ok());
    EXPECT_EQ(dets->size(), 2u);
}

TEST(Decode, DetrQueriesNormalizedBoxesBestClassNoNms) {
    // RT-DETR's export: [1, K, 4+nc], cx cy w h in [0, 1], then class probabilities.
    Tensor t(DType::Float32, {1, 3, 7});
    std::vector<float> rows = {0.5f, 0.5f, 0.25f, 0.5f, 0.1f, 0.7f,  0.2f,     // best class 1
                               0.5f, 0.5f, 0.25f, 0.5f, 0.9f, 0.05f, 0.0f,     // same box, class 0
                               0.1f, 0.1f, 0.1f,  0.1f, 0.0f, 0.0f,  0.0005f};  // under conf
    std::copy(rows.begin(), rows.end(), t.data<float>());
    auto layout = detect_head_layout("scores", t.shape(), 640, HeadKind::Auto, 3);
    ASSERT_TRUE(layout.is_ok()) << layout.status().message();
    EXPECT_EQ(layout->kind, HeadKind::Query);
    EXPECT_EQ(layout->num_classes, 3);
    EXPECT_EQ(layout->num_rows, 3);
    EXPECT_TRUE(class_values_are_probabilities(t, *layout));
    DecodeOptions opts;
    opts.apply_sigmoid = false;
    auto dets = decode_detections(t, *layout, 640, opts);
    ASSERT_TRUE(dets.is_ok());
    ASSERT_EQ(dets->size(), 2u);  // overlapping boxes both kept: no NMS
    EXPECT_FLOAT_EQ((*dets)[0].score, 0.9f);
    EXPECT_EQ((*dets)[0].cls, 0);
    EXPECT_EQ((*dets)[1].cls, 1);
    EXPECT_FLOAT_EQ((*dets)[1].box[0], 320 - 80);
    EXPECT_FLOAT_EQ((*dets)[1].box[1], 320 - 160);
    EXPECT_FLOAT_EQ((*dets)[1].box[2], 320 + 80);
    EXPECT_FLOAT_EQ((*dets)[1].box[3], 320 + 160);
    // 84 channels and no class count: COCO's 80; forced with --head detr; other widths refused.
    auto coco = detect_head_layout("o", {1, 300, 84}, 640);
    ASSERT_TRUE(coco.is_ok());
    EXPECT_EQ(coco->kind, HeadKind::Query);
    EXPECT_FALSE(detect_head_layout("o", {1, 300, 90}, 640).is_ok());
    auto forced = detect_head_layout("o", {1, 300, 90}, 640, HeadKind::Query);
    ASSERT_TRUE(forced.is_ok());
    EXPECT_EQ(forced->num_classes, 86);
    EXPECT_EQ(parse_head_kind("detr").value(), HeadKind::Query);
}

TEST(Decode, NmsIsClassAwareAndStrict) {
    std::vector<Detection> c = {
        {{0, 0, 10, 10}, 0.9f, 0},
        {{0, 0, 10, 10}, 0.8f, 1},  // same box, other class: kept
        {{5, 0, 15, 10}, 0.7f, 0},  // IoU 1/3 with the first
        {{0, 0, 10, 11}, 0.6f, 0},  // IoU 10/11 > 0.7: dropped
    };
    auto k = nms_class_aware(c, 0.7f, 300);
    ASSERT_EQ(k.size(), 3u);
    EXPECT_FLOAT_EQ(k[2].score, 0.7f);
    // IoU exactly at the threshold survives (only IoU > thr suppresses).
    auto k2 = nms_class_aware(c, 1.0f / 3.0f + 1e-6f, 300);
    EXPECT_EQ(k2.size(), 3u);
    auto k3 = nms_class_aware(c, 0.3f, 300);
    EXPECT_EQ(k3.size(), 2u);
    auto k4 = nms_class_aware(c, 0.7f, 1);
    EXPECT_EQ(k4.size(), 1u);
}

TEST(ClassMap, CocoTableAndFallbacks) {
    const auto& t = coco80_to_coco91();
    EXPECT_EQ(t[0], 1);
    EXPECT_EQ(t[11], 13);
    EXPECT_EQ(t[24], 27);
    EXPECT_EQ(t[26], 31);
    EXPECT_EQ(t[40], 46);
    EXPECT_EQ(t[60], 67);
    EXPECT_EQ(t[61], 70);
    EXPECT_EQ(t[62], 72);
    EXPECT_EQ(t[73], 84);
    EXPECT_EQ(t[79], 90);

    std::vector<CocoCategory> coco_subset = {{1, "person"}, {3, "car"}, {90, "toothbrush"}};
    auto m = build_class_map(coco_subset, 80);
    ASSERT_TRUE(m.is_ok());
    EXPECT_EQ(m->how, "coco80->91");
    EXPECT_EQ(m->category(2), 3);
    EXPECT_EQ(m->category(79), 90);
    EXPECT_EQ(m->category(80), -1);

    std::vector<CocoCategory> shapes = {{2, "b"}, {1, "a"}, {7, "c"}};
    m = build_class_map(shapes, 4);
    ASSERT_TRUE(m.is_ok());
    EXPECT_EQ(m->how, "i-th category");
    EXPECT_EQ(m->category(0), 1);
    EXPECT_EQ(m->category(1), 2);
    EXPECT_EQ(m->category(2), 7);
    EXPECT_EQ(m->category(3), -1);

    m = build_class_map(shapes, 3, "", {"c", "a", "b", "zzz"});
    ASSERT_TRUE(m.is_ok());
    EXPECT_EQ(m->how, "by class name");
    EXPECT_EQ(m->category(0), 7);
    EXPECT_EQ(m->category(3), -1);

    auto names = parse_ultralytics_names("{0: 'person', 1: \"it's\", 2: 'traffic light'}");
    ASSERT_EQ(names.size(), 3u);
    EXPECT_EQ(names[1], "it's");
    EXPECT_EQ(names[2], "traffic light");
    EXPECT_TRUE(parse_ultralytics_names("{0: 'a', 2: 'b'}").empty());
}

TEST(Latency, NumpyPercentiles) {
    LatencyStats s = latency_stats({9.0, 0.001, 0.002, 0.003, 0.004}, 1);
    EXPECT_EQ(s.samples, 4);
    EXPECT_NEAR(s.mean_ms, 2.5, 1e-12);
    EXPECT_NEAR(s.median_ms, 2.5, 1e-12);
    EXPECT_NEAR(s.p90_ms, 3.7, 1e-12);  // np.percentile([1,2,3,4], 90)
    EXPECT_NEAR(s.throughput_fps, 400.0, 1e-9);
    LatencyStats none = latency_stats({1.0}, 5);
    EXPECT_EQ(none.samples, 0);
    EXPECT_EQ(none.mean_ms, 0.0);
}

}  // namespace
}  // namespace lowbit
