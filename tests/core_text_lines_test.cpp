// The one reader of lowbit's line-based text inputs (core/text_lines.h) and the exclusion-list
// reader built on it (pipeline/job_inputs.h).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/text_lines.h"
#include "pipeline/job_inputs.h"

namespace lowbit {
namespace {

std::vector<std::string> texts(const std::vector<TextLine>& v) {
    std::vector<std::string> out;
    for (const TextLine& l : v) out.push_back(l.text);
    return out;
}

TEST(TextLines, SkipsBlankAndCommentLinesAndTrims) {
    const auto lines = content_lines("a\n\n  # comment\n\t b c \r\n#x\nlast");
    EXPECT_EQ(texts(lines), (std::vector<std::string>{"a", "b c", "last"}));
    ASSERT_EQ(lines.size(), 3u);
    EXPECT_EQ(lines[0].number, 1);
    EXPECT_EQ(lines[1].number, 4);
    EXPECT_EQ(lines[2].number, 6);
}

TEST(TextLines, WholeLineCommentsKeepAHashAfterAValue) {
    EXPECT_EQ(texts(content_lines("img#1.jpg\n5 # five\n")),
              (std::vector<std::string>{"img#1.jpg", "5 # five"}));
}

TEST(TextLines, TrailingCommentsCutFromTheHash) {
    TextLineOptions o;
    o.trailing_comments = true;
    o.whitespace = " \t\r\n\v\f";
    EXPECT_EQ(texts(content_lines("/a/Conv # head\n\v# all comment\n  /b/Conv\f\n", o)),
              (std::vector<std::string>{"/a/Conv", "/b/Conv"}));
}

TEST(TextLines, ExclusionListFormat) {
    const auto path = std::filesystem::temp_directory_path() / "lowbit_text_lines_nodes.txt";
    std::ofstream(path) << "# head\n/model.23/cv2/Conv  # box\n\n /model.23/cv3/Conv\r\n";
    auto names = pipeline::read_node_list(path.string());
    ASSERT_TRUE(names.is_ok()) << names.status().message();
    EXPECT_EQ(*names, (std::vector<std::string>{"/model.23/cv2/Conv", "/model.23/cv3/Conv"}));
    std::filesystem::remove(path);
    EXPECT_FALSE(pipeline::read_node_list(path.string()).is_ok());
}

}  // namespace
}  // namespace lowbit
