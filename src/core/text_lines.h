// The line format of lowbit's small text inputs (image lists, image-id lists, class maps,
// exclusion lists): one value per line, blank lines and '#' comments skipped, surrounding
// whitespace trimmed. One reader, so every such file is read the same way.
#pragma once

#include <string>
#include <vector>

namespace lowbit {

struct TextLine {
    int number = 0;    // 1-based line number in the file (for error messages)
    std::string text;  // trimmed, never empty
};

struct TextLineOptions {
    // false: a line whose first non-blank character is '#' is a comment (the seed's lists);
    // true: everything from the first '#' on is a comment, anywhere in the line (exclusion
    // lists, research/seed-spec.md §7.2).
    bool trailing_comments = false;
    // Characters trimmed from both ends (and making a line blank).
    const char* whitespace = " \t\r";
};

// The non-blank, non-comment lines of `text` (split at '\n'), trimmed, in order.
std::vector<TextLine> content_lines(const std::string& text, const TextLineOptions& opts = {});

}  // namespace lowbit
