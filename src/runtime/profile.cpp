#include "runtime/profile.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <ctime>

namespace lowbit {

double process_cpu_ms() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) * 1e-6;
}

void StepProfile::start(int level, size_t n_steps, bool last_run) {
    level_ = level;
    last_run_ = last_run;
    if (last_run_) last_ms_.assign(n_steps, 0.0);
    if (level_ > 1) {
        step_ms_.assign(n_steps, 0.0);
        step_cpu_ms_.assign(n_steps, 0.0);
    }
}

void StepProfile::add(size_t step, const std::string& label, double ms, double cpu_ms) {
    if (last_run_) last_ms_[step] = ms;
    if (level_ == 0) return;
    Entry& e = totals_[label];
    e.cpu_ms += cpu_ms;
    e.ms += ms;
    ++e.calls;
    if (!step_ms_.empty()) {
        step_ms_[step] += ms;
        step_cpu_ms_[step] += cpu_ms;
    }
}

void StepProfile::print(int n_threads, const std::vector<std::string>& labels,
                        const std::vector<std::string>& who) const {
    if (runs_ == 0 || level_ == 0) return;
    std::vector<std::pair<std::string, Entry>> rows(totals_.begin(), totals_.end());
    std::sort(rows.begin(), rows.end(),
              [](const auto& a, const auto& b) { return a.second.ms > b.second.ms; });
    double total = 0, total_cpu = 0;
    for (const auto& r : rows) {
        total += r.second.ms;
        total_cpu += r.second.cpu_ms;
    }
    const double runs = static_cast<double>(runs_);
    // CPU time next to wall time shows time lost waiting for a core on a busy machine (at one
    // thread, cpu < wall) and time spent spinning (at several threads).
    fmt::print(stderr,
               "lowbit profile: {} run(s), {} threads, {:.3f} ms/run in steps, {:.3f} ms/run CPU\n",
               runs_, n_threads, total / runs, total_cpu / runs);
    fmt::print(stderr, "  {:>9} {:>9} {:>6} {:>6}  {}\n", "ms/run", "cpu ms", "%", "calls", "op");
    for (const auto& [label, e] : rows) {
        fmt::print(stderr, "  {:9.3f} {:9.3f} {:6.1f} {:6}  {}\n", e.ms / runs, e.cpu_ms / runs,
                   100.0 * e.ms / total, e.calls / runs_, label);
    }
    if (level_ > 1) {
        std::vector<size_t> idx(step_ms_.size());
        for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
        std::sort(idx.begin(), idx.end(),
                  [&](size_t a, size_t b) { return step_ms_[a] > step_ms_[b]; });
        fmt::print(stderr, "  steps, slowest first:\n");
        for (size_t k = 0; k < idx.size(); ++k) {
            fmt::print(stderr, "  {:9.3f} {:9.3f}  {}  ({})\n", step_ms_[idx[k]] / runs,
                       step_cpu_ms_[idx[k]] / runs, labels[idx[k]], who[idx[k]]);
        }
    }
}

}  // namespace lowbit
