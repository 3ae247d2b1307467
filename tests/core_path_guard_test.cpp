// Outputs never overwrite inputs (core/path_guard.h), and the "did you mean" matcher
// (core/close_matches.h) used for misspelt node names.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/close_matches.h"
#include "core/path_guard.h"

namespace lowbit {
namespace {

namespace fs = std::filesystem;

class PathGuard : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() /
               ("lowbit_path_guard_" + std::to_string(::getpid()) + "_" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_ / "sub");
        std::ofstream(dir_ / "model.onnx") << "m";
        std::ofstream(dir_ / "other.onnx") << "o";
    }
    void TearDown() override { fs::remove_all(dir_); }
    std::string p(const std::string& rel) const { return (dir_ / rel).string(); }
    fs::path dir_;
};

TEST_F(PathGuard, OutputEqualToInputIsAUsageErrorNamingBothFlags) {
    PathRoles r;
    r.input("MODEL", p("model.onnx"));
    r.output("--out", p("model.onnx"));
    Status st = check_path_roles(r);
    ASSERT_FALSE(st);
    EXPECT_EQ(st.code(), StatusCode::InvalidArgument);
    EXPECT_NE(st.message().find("--out"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("MODEL"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("model.onnx"), std::string::npos) << st.message();
}

TEST_F(PathGuard, DistinctFilesPass) {
    PathRoles r;
    r.input("MODEL", p("model.onnx"));
    r.output("--out", p("other.onnx"));
    r.output("--json", p("new.json"));
    EXPECT_TRUE(check_path_roles(r));
}

TEST_F(PathGuard, OtherSpellingsOfTheSamePathAreCaught) {
    PathRoles r;
    r.input("MODEL", p("model.onnx"));
    r.output("--out", p("sub/../model.onnx"));
    EXPECT_FALSE(check_path_roles(r));
    PathRoles r2;
    r2.input("MODEL", p("model.onnx"));
    r2.output("--out", p(".//model.onnx"));
    EXPECT_FALSE(check_path_roles(r2));
}

TEST_F(PathGuard, HardLinkAndSymlinkToAnInputAreTheSameFile) {
    fs::create_hard_link(p("model.onnx"), p("hard.onnx"));
    fs::create_symlink(p("model.onnx"), p("soft.onnx"));
    fs::create_directory_symlink(dir_, p("sub/up"));
    for (const char* alias : {"hard.onnx", "soft.onnx", "sub/up/model.onnx"}) {
        PathRoles r;
        r.input("MODEL", p("model.onnx"));
        r.output("--out", p(alias));
        EXPECT_FALSE(check_path_roles(r)) << alias;
        EXPECT_TRUE(same_file(p("model.onnx"), p(alias))) << alias;
    }
}

TEST_F(PathGuard, TwoOutputsOnOneNewPathAreCaught) {
    PathRoles r;
    r.output("--out", p("x.json"));
    r.output("--save-detections", p("sub/../x.json"));
    Status st = check_path_roles(r);
    ASSERT_FALSE(st);
    EXPECT_NE(st.message().find("--save-detections"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("--out"), std::string::npos) << st.message();
}

TEST_F(PathGuard, OneOutputDeclaredTwiceIsNotAConflict) {
    PathRoles r;
    r.output("--out-dir", p("a.txt"));
    r.output("--out-dir", p("a.txt"));
    EXPECT_TRUE(check_path_roles(r));
}

TEST_F(PathGuard, EmptyPathsAreOptionsNotGiven) {
    PathRoles r;
    r.input("--calib", "");
    r.output("--out", "");
    r.output("--json", "");
    EXPECT_TRUE(r.inputs.empty());
    EXPECT_TRUE(r.outputs.empty());
    EXPECT_TRUE(check_path_roles(r));
    EXPECT_FALSE(same_file("", ""));
}

TEST_F(PathGuard, RelativeAndAbsoluteSpellingsAgree) {
    const fs::path cwd = fs::current_path();
    fs::current_path(dir_);
    PathRoles r;
    r.input("--ann", "model.onnx");
    r.output("--out", p("model.onnx"));
    Status st = check_path_roles(r);
    PathRoles r2;
    r2.output("--out", "new.json");
    r2.output("--html", p("new.json"));
    Status st2 = check_path_roles(r2);
    fs::current_path(cwd);
    EXPECT_FALSE(st);
    EXPECT_FALSE(st2);
}

TEST(CloseMatches, EditDistance) {
    EXPECT_EQ(edit_distance("", ""), 0u);
    EXPECT_EQ(edit_distance("abc", ""), 3u);
    EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
    EXPECT_EQ(edit_distance("/model.0/conv/Conv", "/model.0/conv/Conv"), 0u);
    EXPECT_EQ(edit_distance("/model.0/conv/Conv", "/model.0/cnv/Conv"), 1u);
}

TEST(CloseMatches, NearestFirstAndNothingFar) {
    const std::vector<std::string> names = {"/model.0/conv/Conv", "/model.1/conv/Conv",
                                            "/model.10/conv/Conv", "/model.23/Concat"};
    auto m = close_matches("/model.0/conv/Cnv", names);
    ASSERT_FALSE(m.empty());
    EXPECT_EQ(m[0], "/model.0/conv/Conv");
    EXPECT_LE(m.size(), 3u);
    EXPECT_TRUE(close_matches("something/else/entirely", names).empty());
    EXPECT_EQ(close_matches("/model.1/conv/Conv", names, 1),
              std::vector<std::string>{"/model.1/conv/Conv"});
}

}  // namespace
}  // namespace lowbit
