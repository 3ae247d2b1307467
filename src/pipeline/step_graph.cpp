#include "pipeline/step_graph.h"

#include <fmt/format.h>

#include <chrono>
#include <filesystem>

namespace lowbit::pipeline {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::string path_in(const std::string& root, const std::string& rel) {
    return (fs::path(root) / rel).string();
}

// What the step's standalone command exits with for `st`: 2 for usage errors, else 1.
int exit_code_of(const Status& st) {
    return st.code() == StatusCode::InvalidArgument ? 2 : 1;
}

// Runs one step that is due: clears its record, runs it with its log, records it.
Result<double> run_one(Step& s, const std::string& root, const StepSpec& spec,
                       const RunStepsOptions& o, Fingerprinter& fp) {
    LOWBIT_TRY(clear_step(root, s.name));
    std::error_code ec;
    for (const std::string& out : s.outputs) {
        fs::create_directories(fs::path(out).parent_path(), ec);  // not every job does
    }
    const auto t0 = Clock::now();
    const std::string log_path = path_in(root, "logs/" + s.name + ".log");
    for (const auto& c : s.commands)
        std::fprintf(o.progress, "  lowbit %s\n", join_command(c).c_str());
    std::FILE* log = std::fopen(log_path.c_str(), "w");
    if (!log) return io_error("cannot open {} for writing", log_path);
    StepContext ctx;
    ctx.log = log;
    Status st = s.run ? s.run(ctx) : Status::ok();
    std::fclose(log);
    if (!st) {
        const std::string cmd = s.commands.empty() ? s.name : s.commands.front().front();
        std::fprintf(o.progress, "lowbit %s: error: %s\n", cmd.c_str(), st.message().c_str());
        // Whatever the step's own error, a failed step is a failed run (exit 1, not 2).
        return error(StatusCode::Internal, "step {} failed (exit {}); its output is in {}", s.name,
                     exit_code_of(st), log_path);
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    LOWBIT_TRY(record_step(fp, root, spec, seconds));
    return seconds;
}

}  // namespace

StepSpec step_spec(const Step& step, const std::string& program_hash) {
    StepSpec s;
    s.name = step.name;
    s.argv = step.commands;
    s.argv.insert(s.argv.end(), step.notes.begin(), step.notes.end());
    if (!program_hash.empty()) s.argv.push_back({"(lowbit)", program_hash});
    s.inputs = step.inputs;
    s.outputs = step.outputs;
    return s;
}

const char* step_status_name(StepStatus s) {
    switch (s) {
        case StepStatus::Ran: return "ran";
        case StepStatus::Skipped: return "skipped";
        case StepStatus::Unavailable: return "unavailable";
    }
    return "?";
}

Status check_step_names(const std::vector<Step>& steps, const std::set<std::string>& forced) {
    for (const std::string& f : forced) {
        bool known = false;
        for (const Step& s : steps) known = known || s.name == f;
        if (!known) return invalid("--force-step '{}': no such step", f);
    }
    return Status::ok();
}

std::string join_command(const std::vector<std::string>& argv) {
    std::string s;
    for (const std::string& a : argv) {
        if (!s.empty()) s += ' ';
        const bool quote = a.empty() || a.find_first_of(" \t'\"$") != std::string::npos;
        s += quote ? "'" + a + "'" : a;
    }
    return s;
}

Result<std::vector<StepOutcome>> run_steps(std::vector<Step>& steps, const std::string& root,
                                           const RunStepsOptions& o, Fingerprinter& fp) {
    std::vector<StepOutcome> outcomes;
    const size_t n = steps.size();
    for (size_t i = 0; i < n; ++i) {
        Step& s = steps[i];
        if (!o.only.empty() && !o.only.count(s.name)) continue;
        if (s.prepare) s.prepare(s);
        const std::string tag = fmt::format("[{}/{}] {}", i + 1, n, s.name);
        StepOutcome out{s.name, s.title, StepStatus::Ran, 0.0, std::nullopt, ""};
        std::string missing_input;
        std::error_code ec;
        for (const std::string& in : s.inputs) {
            if (!fs::exists(in, ec)) missing_input = in;
        }
        if (!missing_input.empty()) {
            out.status = StepStatus::Unavailable;
            out.why = "input " + missing_input + " is missing";
            std::fprintf(o.progress, "%s: skipped (%s)\n", tag.c_str(), out.why.c_str());
            outcomes.push_back(out);
            continue;
        }
        const StepSpec spec = step_spec(s, o.program_hash);
        if (!o.force && !o.forced.count(s.name)) {
            auto state = check_step(fp, root, spec);
            if (!state) return state.status().with_context(s.name);
            if (*state == StepState::UpToDate) {
                auto rec = read_step_record(root, s.name);
                std::fprintf(o.progress, "%s: up to date, skipped\n", tag.c_str());
                out.status = StepStatus::Skipped;
                out.recorded_seconds = rec && rec->has_value() ? (*rec)->seconds : 0.0;
                outcomes.push_back(out);
                continue;
            }
            std::fprintf(o.progress, "%s: %s (%s)\n", tag.c_str(), s.title.c_str(),
                         step_state_name(*state));
        } else {
            std::fprintf(o.progress, "%s: %s (forced)\n", tag.c_str(), s.title.c_str());
        }
        LOWBIT_ASSIGN(out.seconds, run_one(s, root, spec, o, fp));
        std::fprintf(o.progress, "%s: done in %.1f s\n", tag.c_str(), out.seconds);
        outcomes.push_back(out);
    }
    return outcomes;
}

}  // namespace lowbit::pipeline
