// Step profiling (ExecutorOptions::profile): wall and process CPU time per step of the main
// program, summed per label (op kind and variant), printed to stderr when the executor goes
// away; level 2 adds every step, slowest first. Separately, `last_run` keeps each step's wall time
// of the latest run (Executor::step_times(), for per-node latency) without printing anything.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace lowbit {

// CPU time of the whole process (all threads, spinning included), in milliseconds.
double process_cpu_ms();

class StepProfile {
public:
    // level 0: off; 1: per label; 2: also per step (of `n_steps`). last_run: keep every step's
    // time of the latest run.
    void start(int level, size_t n_steps, bool last_run = false);
    int level() const { return level_; }
    bool timing() const { return level_ > 0 || last_run_; }
    // The latest run's wall time per step (empty unless started with last_run).
    const std::vector<double>& last_run_ms() const { return last_ms_; }

    void add(size_t step, const std::string& label, double ms, double cpu_ms);
    void end_run() { ++runs_; }

    // `labels` and `who` (the node name, or the reordered tensor) per step.
    void print(int n_threads, const std::vector<std::string>& labels,
               const std::vector<std::string>& who) const;

private:
    struct Entry {
        double ms = 0;
        double cpu_ms = 0;
        int64_t calls = 0;
    };
    int level_ = 0;
    bool last_run_ = false;
    std::vector<double> last_ms_;
    int64_t runs_ = 0;
    std::unordered_map<std::string, Entry> totals_;
    std::vector<double> step_ms_, step_cpu_ms_;  // level 2
};

}  // namespace lowbit
