#include "core/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace lowbit {

bool Progress::stderr_is_terminal() {
    return ::isatty(STDERR_FILENO) == 1;
}

Progress::Progress(std::string label, int64_t total, std::string unit)
    : Progress(std::move(label), total, std::move(unit), stderr_is_terminal()) {}

Progress::Progress(std::string label, int64_t total, std::string unit, bool enabled)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      enabled_(enabled),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() {
    finish();
}

void Progress::advance(int64_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    done_ += n;
    if (!enabled_ || finished_) return;
    auto now = std::chrono::steady_clock::now();
    if (now - last_draw_ < std::chrono::milliseconds(100) && done_ < total_) return;
    last_draw_ = now;
    draw(false);
}

void Progress::finish() {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) return;
    finished_ = true;
    if (enabled_) draw(true);
}

void Progress::draw(bool final_line) {
    double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    double rate = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0.0;
    std::string line = fmt::format("{} {}/{}", label_, done_, total_);
    if (total_ > 0) {
        constexpr int kWidth = 24;
        int filled = static_cast<int>(kWidth * std::min<int64_t>(done_, total_) / total_);
        line += " [" + std::string(static_cast<size_t>(filled), '=') +
                (filled < kWidth ? ">" : "") +
                std::string(static_cast<size_t>(std::max(0, kWidth - filled - 1)), ' ') + "]";
    }
    line += fmt::format(" {:.1f} {}/s", rate, unit_);
    if (final_line) {
        line += " in " + format_duration(elapsed);
    } else if (rate > 0 && total_ > done_) {
        line += " ETA " + format_duration(static_cast<double>(total_ - done_) / rate);
    }
    // \r returns to the line start, \x1b[K clears what a longer previous line left behind.
    std::fprintf(stderr, "\r%s\x1b[K%s", line.c_str(), final_line ? "\n" : "");
    std::fflush(stderr);
}

std::string format_duration(double seconds) {
    if (!std::isfinite(seconds) || seconds < 0) seconds = 0;
    auto s = static_cast<int64_t>(std::llround(seconds));
    int64_t h = s / 3600, m = (s / 60) % 60, sec = s % 60;
    if (h > 0) return fmt::format("{}:{:02}:{:02}", h, m, sec);
    return fmt::format("{}:{:02}", m, sec);
}

}  // namespace lowbit
