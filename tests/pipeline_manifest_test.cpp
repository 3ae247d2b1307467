// Step manifests of `lowbit run` (pipeline/run_manifest.h): when a step counts as up to date.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include "pipeline/run_manifest.h"

namespace lowbit::pipeline {
namespace {

namespace fs = std::filesystem;

void write(const fs::path& p, const std::string& text) {
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << text;
}

class ManifestTest : public ::testing::Test {
protected:
    void SetUp() override {
        root_ = fs::temp_directory_path() /
                ("lowbit_manifest_" +
                 std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
                 ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(root_);
        fs::create_directories(root_);
        write(root_ / "in.txt", "input v1");
        write(root_ / "dir" / "a.txt", "a");
        write(root_ / "dir" / "sub" / "b.txt", "b");
        write(root_ / "out" / "result.json", "{\"x\": 1}");
        spec_.name = "step";
        spec_.argv = {{"eval", "model.onnx", "--max-images", "5"}};
        spec_.inputs = {(root_ / "in.txt").string(), (root_ / "dir").string()};
        spec_.outputs = {(root_ / "out" / "result.json").string()};
    }
    void TearDown() override { fs::remove_all(root_); }

    StepState check() {
        Fingerprinter fp;  // a fresh one, as a new `lowbit run` process would have
        auto s = check_step(fp, root_.string(), spec_);
        EXPECT_TRUE(s.is_ok()) << s.status().message();
        return s.is_ok() ? *s : StepState::NeverRun;
    }
    void record() {
        Fingerprinter fp;
        Status st = record_step(fp, root_.string(), spec_, 1.5);
        ASSERT_TRUE(st.is_ok()) << st.message();
    }

    fs::path root_;
    StepSpec spec_;
};

TEST_F(ManifestTest, NeverRunUntilRecorded) {
    EXPECT_EQ(check(), StepState::NeverRun);
    record();
    EXPECT_EQ(check(), StepState::UpToDate);
    const nlohmann::json m = read_manifest(root_.string(), "step");
    EXPECT_EQ(m["step"], "step");
    EXPECT_EQ(m["seconds"], 1.5);
    EXPECT_EQ(m["argv"][0][0], "eval");
}

TEST_F(ManifestTest, ArgvChangeReruns) {
    record();
    spec_.argv[0][3] = "6";
    EXPECT_EQ(check(), StepState::InputsChanged);
}

TEST_F(ManifestTest, InputContentChangeReruns) {
    record();
    write(root_ / "in.txt", "input v2");
    EXPECT_EQ(check(), StepState::InputsChanged);
}

TEST_F(ManifestTest, FileInsideInputFolderChangeReruns) {
    record();
    write(root_ / "dir" / "sub" / "c.txt", "new file");
    EXPECT_EQ(check(), StepState::InputsChanged);
}

TEST_F(ManifestTest, SameBytesNewTimestampStaysUpToDate) {
    record();
    write(root_ / "in.txt", "input v1");
    fs::last_write_time(root_ / "in.txt",
                        fs::last_write_time(root_ / "in.txt") + std::chrono::hours(1));
    EXPECT_EQ(check(), StepState::UpToDate);
}

TEST_F(ManifestTest, OutputMissingOrChangedReruns) {
    record();
    write(root_ / "out" / "result.json", "{\"x\": 2}");
    EXPECT_EQ(check(), StepState::OutputsChanged);
    fs::remove(root_ / "out" / "result.json");
    EXPECT_EQ(check(), StepState::OutputsMissing);
}

TEST_F(ManifestTest, ClearedOrCorruptManifestReruns) {
    record();
    ASSERT_TRUE(clear_step(root_.string(), "step").is_ok());
    EXPECT_EQ(check(), StepState::NeverRun);
    record();
    write(manifest_path(root_.string(), "step"), "{\"step\": ");  // torn write
    EXPECT_EQ(check(), StepState::NeverRun);
}

TEST_F(ManifestTest, RecordRefusesMissingOutput) {
    fs::remove(root_ / "out" / "result.json");
    Fingerprinter fp;
    EXPECT_FALSE(record_step(fp, root_.string(), spec_, 0).is_ok());
    EXPECT_EQ(check(), StepState::NeverRun);
}

TEST(Fingerprint, MissingPathAndCache) {
    const fs::path p = fs::temp_directory_path() / "lowbit_fp_cache.txt";
    write(p, "one");
    Fingerprinter fp;
    auto a = fp.path_hash(p.string());
    ASSERT_TRUE(a.is_ok());
    write(p, "three");  // another size: the cache must not answer
    auto b = fp.path_hash(p.string());
    ASSERT_TRUE(b.is_ok());
    EXPECT_NE(*a, *b);
    EXPECT_EQ(*fp.path_hash((p.string() + ".none")), "missing");
    EXPECT_EQ(hash_bytes("", 0), "cbf29ce484222325");   // FNV-1a 64 offset basis
    EXPECT_EQ(hash_bytes("a", 1), "af63dc4c8601ec8c");  // FNV-1a 64 of "a"
    fs::remove(p);
}

}  // namespace
}  // namespace lowbit::pipeline
