#include <gtest/gtest.h>

#include <filesystem>
#include <vector>

#include "core/fs.h"
#include "data/image_list.h"
#include "data/letterbox.h"

namespace lowbit {
namespace {

TEST(Letterbox, GeometryMatchesUltralyticsPredictPath) {
    // research/yolo-coco.md §3.3 (single LetterBox from the original image, round not ceil).
    Letterbox a = letterbox_geometry(375, 500, 640);
    EXPECT_EQ(a.new_w, 640);
    EXPECT_EQ(a.new_h, 480);
    EXPECT_EQ(a.pad_top, 80);
    EXPECT_EQ(a.pad_bottom, 80);
    EXPECT_EQ(a.pad_left, 0);
    Letterbox b = letterbox_geometry(333, 500, 640);  // 426.24 rows
    EXPECT_EQ(b.new_h, 426);
    EXPECT_EQ(b.pad_top, 107);
    EXPECT_EQ(b.pad_bottom, 107);
    Letterbox c = letterbox_geometry(318, 424, 640);  // h*r = 480.00000000000006
    EXPECT_EQ(c.new_h, 480);
    // Round half to even: 721 * 0.5 = 360.5 -> 360 (std::round would give 361).
    Letterbox d = letterbox_geometry(721, 1280, 640);
    EXPECT_EQ(d.new_h, 360);
    // Odd padding: the extra pixel goes to the bottom/right.
    Letterbox e = letterbox_geometry(722, 1280, 640);
    EXPECT_EQ(e.new_h, 361);
    EXPECT_EQ(e.pad_top, 139);
    EXPECT_EQ(e.pad_bottom, 140);
    Letterbox f = letterbox_geometry(500, 333, 640);
    EXPECT_EQ(f.new_w, 426);
    EXPECT_EQ(f.pad_left, 107);
    EXPECT_EQ(f.pad_right, 107);
    EXPECT_DOUBLE_EQ(f.scale, 640.0 / 500.0);
    // Upscaling is allowed (no scaleup=False).
    Letterbox g = letterbox_geometry(150, 200, 640);
    EXPECT_EQ(g.new_w, 640);
    EXPECT_EQ(g.new_h, 480);
}

TEST(Letterbox, ChannelOrderPaddingAndScale) {
    // 4 wide, 2 high, no resize at size 4: rows 1..2 hold the image, rows 0 and 3 are padding.
    std::vector<uint8_t> bgr(4 * 2 * 3);
    for (size_t p = 0; p < 8; ++p) {
        bgr[3 * p + 0] = 10;                            // B
        bgr[3 * p + 1] = 20;                            // G
        bgr[3 * p + 2] = static_cast<uint8_t>(30 + p);  // R
    }
    std::vector<float> out(3 * 4 * 4, -1.0f);
    Letterbox lb;
    ASSERT_TRUE(letterbox_bgr(bgr.data(), 2, 4, 12, 4, out.data(), &lb).is_ok());
    EXPECT_EQ(lb.pad_top, 1);
    EXPECT_EQ(lb.pad_bottom, 1);
    const float pad = 114.0f / 255.0f;
    for (int c = 0; c < 3; ++c) {
        for (int x = 0; x < 4; ++x) {
            EXPECT_EQ(out[c * 16 + 0 * 4 + x], pad);
            EXPECT_EQ(out[c * 16 + 3 * 4 + x], pad);
        }
    }
    EXPECT_EQ(out[0 * 16 + 1 * 4 + 2], 32.0f / 255.0f);  // R plane first
    EXPECT_EQ(out[1 * 16 + 1 * 4 + 2], 20.0f / 255.0f);
    EXPECT_EQ(out[2 * 16 + 2 * 4 + 3], 10.0f / 255.0f);
    EXPECT_EQ(out[0 * 16 + 2 * 4 + 3], 37.0f / 255.0f);
}

TEST(Letterbox, UnletterboxClips) {
    Letterbox lb = letterbox_geometry(333, 500, 640);  // scale 1.28, pad_top 107
    float box[4] = {-10.0f, 107.0f + 12.8f, 700.0f, 640.0f};
    unletterbox_xyxy(lb, box);
    EXPECT_EQ(box[0], 0.0f);
    EXPECT_FLOAT_EQ(box[1], 10.0f);
    EXPECT_EQ(box[2], 500.0f);
    EXPECT_EQ(box[3], 333.0f);
}

TEST(Letterbox, ErrorsNameTheFile) {
    float dummy[3 * 32 * 32];
    auto missing = load_letterboxed("/no/such/image.jpg", 32, dummy);
    ASSERT_FALSE(missing.is_ok());
    EXPECT_NE(missing.status().message().find("/no/such/image.jpg"), std::string::npos);
    std::string path = (std::filesystem::temp_directory_path() / "lowbit_corrupt.jpg").string();
    ASSERT_TRUE(write_file_atomic(path, std::string("\xff\xd8\xff garbage", 12)).is_ok());
    auto corrupt = load_letterboxed(path, 32, dummy);
    ASSERT_FALSE(corrupt.is_ok());
    EXPECT_NE(corrupt.status().message().find(path), std::string::npos);
    std::filesystem::remove(path);
}

TEST(ImageList, ResolvesAndValidates) {
    namespace fs = std::filesystem;
    fs::path dir = fs::temp_directory_path() / "lowbit_list_test";
    fs::create_directories(dir / "imgs");
    ASSERT_TRUE(write_file_atomic((dir / "imgs" / "b.jpg").string(), "x").is_ok());
    ASSERT_TRUE(write_file_atomic((dir / "imgs" / "a.PNG").string(), "x").is_ok());
    ASSERT_TRUE(write_file_atomic((dir / "imgs" / "notes.txt").string(), "x").is_ok());
    ASSERT_TRUE(
        write_file_atomic((dir / "list.txt").string(), "# c\nimgs/b.jpg\n\nimgs/a.PNG\n").is_ok());
    auto l = read_image_list((dir / "list.txt").string());
    ASSERT_TRUE(l.is_ok()) << l.status().message();
    ASSERT_EQ(l->size(), 2u);
    EXPECT_EQ(fs::path((*l)[0]).filename(), "b.jpg");  // list order kept
    auto d = list_image_dir((dir / "imgs").string());
    ASSERT_TRUE(d.is_ok());
    ASSERT_EQ(d->size(), 2u);
    EXPECT_EQ(fs::path((*d)[0]).filename(), "a.PNG");  // sorted, .txt skipped
    ASSERT_TRUE(
        write_file_atomic((dir / "bad.txt").string(), "imgs/b.jpg\nimgs/zzz.jpg\n").is_ok());
    auto bad = read_image_list((dir / "bad.txt").string());
    ASSERT_FALSE(bad.is_ok());
    EXPECT_NE(bad.status().message().find("zzz.jpg"), std::string::npos);
    EXPECT_NE(bad.status().message().find(":2:"), std::string::npos);
    fs::remove_all(dir);
}

}  // namespace
}  // namespace lowbit
