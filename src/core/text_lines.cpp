#include "core/text_lines.h"

#include <sstream>

namespace lowbit {

std::vector<TextLine> content_lines(const std::string& text, const TextLineOptions& opts) {
    std::vector<TextLine> out;
    std::istringstream in(text);
    std::string line;
    int number = 0;
    while (std::getline(in, line)) {
        ++number;
        if (opts.trailing_comments) {
            const size_t hash = line.find('#');
            if (hash != std::string::npos) line.erase(hash);
        }
        const size_t b = line.find_first_not_of(opts.whitespace);
        if (b == std::string::npos || line[b] == '#') continue;
        const size_t e = line.find_last_not_of(opts.whitespace);
        out.push_back({number, line.substr(b, e - b + 1)});
    }
    return out;
}

}  // namespace lowbit
