// "Did you mean ...": the names closest to a misspelt one, by edit distance, for error messages
// about names the user typed (node names in exclusion files, step names).
#pragma once

#include <string>
#include <vector>

namespace lowbit {

// Levenshtein distance (insertions, deletions, substitutions of single bytes).
size_t edit_distance(const std::string& a, const std::string& b);

// Up to `max_n` of `candidates` closest to `name`, nearest first (ties in candidate order), among
// those within max(2, |name| / 3) edits; none when nothing is that close.
std::vector<std::string> close_matches(const std::string& name,
                                       const std::vector<std::string>& candidates,
                                       size_t max_n = 3);

}  // namespace lowbit
