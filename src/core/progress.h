// A one-line progress indicator for long loops ("eval  37/100 [=====>    ] 12.3 img/s ETA 0:05"),
// redrawn in place on stderr at most every 100 ms. It prints only when stderr is a terminal, so
// logs and CI output stay clean; stdout is never touched.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace lowbit {

class Progress {
public:
    // `unit` names what is counted ("img"); enabled defaults to "stderr is a terminal".
    Progress(std::string label, int64_t total, std::string unit = "it");
    Progress(std::string label, int64_t total, std::string unit, bool enabled);
    ~Progress();
    Progress(const Progress&) = delete;
    Progress& operator=(const Progress&) = delete;

    // Adds n finished items (thread-safe).
    void advance(int64_t n = 1);
    // Draws the final state and ends the line (idempotent; the destructor calls it).
    void finish();

    bool enabled() const { return enabled_; }
    static bool stderr_is_terminal();

private:
    void draw(bool final_line);

    std::string label_;
    std::string unit_;
    int64_t total_;
    int64_t done_ = 0;
    bool enabled_;
    bool finished_ = false;
    std::chrono::steady_clock::time_point start_;
    std::chrono::steady_clock::time_point last_draw_;
    std::mutex mu_;
};

// "1:05", "12:00:03" for a duration in seconds.
std::string format_duration(double seconds);

}  // namespace lowbit
