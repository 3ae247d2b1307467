#include "pipeline/slurm.h"

#include <fmt/format.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "core/fs.h"
#include "core/text_lines.h"
#include "pipeline/run_workflow.h"

namespace lowbit::pipeline {

namespace {

namespace fs = std::filesystem;
using Argv = std::vector<std::string>;

std::string path_in(const std::string& root, const std::string& rel) {
    return (fs::path(root) / rel).string();
}

// `a` is `b` or lies inside folder `b`.
bool within(const std::string& a, const std::string& b) {
    const std::string x = fs::path(a).lexically_normal().string();
    const std::string y = fs::path(b).lexically_normal().string();
    return x == y || (x.size() > y.size() && x.compare(0, y.size(), y) == 0 && x[y.size()] == '/');
}

bool reads_from(const Step& s, const Step& t) {
    if (s.after_all) return true;
    for (const std::string& in : s.inputs) {
        for (const std::string& out : t.outputs) {
            if (within(in, out) || within(out, in)) return true;
        }
    }
    return false;
}

// A shell variable name for a job id.
std::string var(const std::string& name) {
    std::string v = "j_";
    for (char c : name) v += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
    return v;
}

std::string self_exe() {
    std::error_code ec;
    fs::path p = fs::read_symlink("/proc/self/exe", ec);
    return ec ? std::string("lowbit") : p.string();
}

std::string script_header(const SlurmOptions& so, const std::string& job_name,
                          const std::string& log, const std::string& array) {
    std::string h = "#!/bin/bash\n";
    h += "#SBATCH --job-name=" + job_name + "\n";
    h += "#SBATCH --output=" + log + "\n";
    if (!array.empty()) h += "#SBATCH --array=" + array + "\n";
    if (!so.partition.empty()) h += "#SBATCH --partition=" + so.partition + "\n";
    if (!so.account.empty()) h += "#SBATCH --account=" + so.account + "\n";
    if (!so.time.empty()) h += "#SBATCH --time=" + so.time + "\n";
    if (so.cpus_per_task > 0) h += fmt::format("#SBATCH --cpus-per-task={}\n", so.cpus_per_task);
    if (so.gpus_per_task > 0) h += fmt::format("#SBATCH --gpus-per-task={}\n", so.gpus_per_task);
    for (const std::string& a : so.sbatch_args) h += "#SBATCH " + a + "\n";
    return h;
}

// Runs `cmd` through the shell; its stdout, or an error with its exit status.
Result<std::string> shell_output(const std::string& cmd) {
    std::FILE* p = popen(cmd.c_str(), "r");
    if (!p) return io_error("cannot run {}", cmd);
    std::string text;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) text.append(buf, n);
    const int rc = pclose(p);
    if (rc != 0) {
        return error(StatusCode::Internal, "`{}` failed (exit {}): {}", cmd,
                     WIFEXITED(rc) ? WEXITSTATUS(rc) : rc, text);
    }
    return text;
}

std::string quote(const std::string& s) { return "'" + s + "'"; }

}  // namespace

Result<std::vector<StepOutcome>> run_scheduled(const RunPlan& plan, std::vector<Step>& steps,
                                               const RunStepsOptions& ro, Fingerprinter& fp,
                                               std::FILE* progress) {
    const RunOptions& o = plan.options;
    const SlurmOptions& so = o.slurm;
    const std::string& R = o.root;
    const std::string dir = path_in(R, "slurm");
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return io_error("cannot create {}: {}", dir, ec.message());

    // Which steps are due, and the steps each waits for.
    std::vector<char> due(steps.size(), 0);
    std::vector<StepOutcome> outcomes;
    std::vector<std::vector<size_t>> deps(steps.size());
    for (size_t i = 0; i < steps.size(); ++i) {
        Step& s = steps[i];
        if (s.prepare) s.prepare(s);
        bool after_due = false;
        for (size_t t = 0; t < i; ++t) {
            if (due[t] && reads_from(s, steps[t])) {
                deps[i].push_back(t);
                after_due = true;
            }
        }
        StepOutcome out{s.name, s.title, StepStatus::Ran, 0.0, std::nullopt, ""};
        if (!after_due && !ro.force && !ro.forced.count(s.name)) {
            std::string missing;
            for (const std::string& in : s.inputs) {
                if (!fs::exists(in, ec)) missing = in;
            }
            if (!missing.empty()) {
                out.status = StepStatus::Unavailable;
                out.why = "input " + missing + " is missing";
                std::fprintf(progress, "  %s: skipped (%s)\n", s.name.c_str(), out.why.c_str());
                outcomes.push_back(out);
                continue;
            }
            auto state = check_step(fp, R, step_spec(s, ro.program_hash));
            if (!state) return state.status().with_context(s.name);
            if (*state == StepState::UpToDate) {
                out.status = StepStatus::Skipped;
                out.recorded_seconds = read_manifest(R, s.name).value("seconds", 0.0);
                std::fprintf(progress, "  %s: up to date, not submitted\n", s.name.c_str());
                outcomes.push_back(out);
                continue;
            }
        }
        due[i] = 1;
        outcomes.push_back(out);
    }

    // The scripts, and submit.sh in step order.
    const Argv base = run_command_line(plan);
    const std::string exe = self_exe();
    std::string submit =
        "#!/bin/bash\n"
        "# Submits the steps of this lowbit run that were due when it was written, each as a\n"
        "# Slurm job (split steps: a job array of shards, then a merge job), with afterok\n"
        "# dependencies mirroring the step graph. Prints 'NAME JOBID' per job.\n"
        "set -euo pipefail\n"
        "cd \"$(dirname \"$0\")\"\n"
        "SBATCH=${SBATCH:-" + so.sbatch + "}\n"
        "submit() { local id; id=$($SBATCH --parsable \"$@\"); echo \"${id%%;*}\"; }\n";
    size_t submitted = 0;
    for (size_t i = 0; i < steps.size(); ++i) {
        if (!due[i]) continue;
        const Step& s = steps[i];
        LOWBIT_TRY(clear_step(R, s.name));
        const std::string shard_dir = step_shard_dir(R, s.name);
        fs::remove_all(shard_dir, ec);
        std::string dep;
        for (size_t t : deps[i]) dep += (dep.empty() ? "" : ":") + std::string("$") + var(steps[t].name);
        const std::string dep_flags =
            dep.empty() ? "" : " --dependency=afterok:" + dep + " --kill-on-invalid-dep=yes";
        Argv cmd = base;
        cmd.insert(cmd.begin(), exe);
        cmd.insert(cmd.end(), {"--step", s.name});
        const bool split = o.shards > 1 && s.run_shard && s.run_merged;
        std::string whole_dep = dep_flags;
        if (split) {
            const std::string name = s.name + ".shards";
            std::string text = script_header(so, "lowbit-" + name,
                                             path_in(R, "logs/slurm-" + s.name + "-%A_%a.out"),
                                             fmt::format("0-{}", o.shards - 1));
            text += fmt::format("# Shard $SLURM_ARRAY_TASK_ID of {} of step {} ({}).\n",
                                o.shards, s.name, s.title);
            text += "exec " + join_command(cmd) +
                    fmt::format(" --step-shard \"${{SLURM_ARRAY_TASK_ID}}/{}\"\n", o.shards);
            LOWBIT_TRY(write_file_atomic(path_in(dir, name + ".sbatch"), text));
            submit += fmt::format("{}=$(submit{} {}.sbatch)\necho \"{} ${}\"\n", var(name),
                                  dep_flags, name, name, var(name));
            whole_dep = " --dependency=afterok:$" + var(name) + " --kill-on-invalid-dep=yes";
            cmd.push_back("--step-merge");
        }
        std::string text = script_header(so, "lowbit-" + s.name,
                                         path_in(R, "logs/slurm-" + s.name + "-%j.out"), "");
        text += fmt::format("# Step {} ({}){}.\n", s.name, s.title,
                            split ? ": merge of its shards" : "");
        text += "exec " + join_command(cmd) + "\n";
        LOWBIT_TRY(write_file_atomic(path_in(dir, s.name + ".sbatch"), text));
        submit += fmt::format("{}=$(submit{} {}.sbatch)\necho \"{} ${}\"\n", var(s.name),
                              whole_dep, s.name, s.name, var(s.name));
        ++submitted;
    }
    const std::string submit_sh = path_in(dir, "submit.sh");
    LOWBIT_TRY(write_file_atomic(submit_sh, submit));
    fs::permissions(submit_sh, fs::perms::owner_exec | fs::perms::group_exec, fs::perm_options::add,
                    ec);
    std::fprintf(progress, "lowbit run: %zu steps due; Slurm scripts in %s\n", submitted,
                 dir.c_str());
    if (o.scheduler == "print" || submitted == 0) {
        if (o.scheduler == "print") {
            std::fprintf(progress, "lowbit run: not submitted (--scheduler print); run %s\n",
                         submit_sh.c_str());
        }
        return outcomes;
    }

    // Submit, then wait for every job to leave the queue.
    if (!shell_output("command -v " + so.sbatch + " >/dev/null 2>&1")) {
        return io_error(
            "{} not found: is Slurm installed here? (--scheduler print writes the scripts and {} "
            "without submitting)",
            so.sbatch, submit_sh);
    }
    LOWBIT_ASSIGN(std::string ids_text, shell_output("bash " + quote(submit_sh) + " 2>&1"));
    std::vector<std::string> ids;
    for (const TextLine& line : content_lines(ids_text)) {
        const size_t sp = line.text.rfind(' ');
        if (sp != std::string::npos) ids.push_back(line.text.substr(sp + 1));
    }
    std::fprintf(progress, "lowbit run: submitted %zu Slurm jobs (%s)\n", ids.size(),
                 fmt::format("{}", fmt::join(ids, ",")).c_str());
    const std::string poll = so.squeue + " -h -o %i -j " + fmt::format("{}", fmt::join(ids, ","));
    std::string last;
    while (true) {
        auto q = shell_output(poll + " 2>/dev/null");
        size_t queued = 0;
        if (q) queued = content_lines(*q).size();
        size_t done = 0;
        for (size_t i = 0; i < steps.size(); ++i) {
            if (due[i] && fs::exists(manifest_path(R, steps[i].name), ec)) ++done;
        }
        const std::string line = fmt::format("lowbit run: slurm: {}/{} steps done, {} jobs queued "
                                             "or running",
                                             done, submitted, queued);
        if (line != last) std::fprintf(progress, "%s\n", line.c_str());
        last = line;
        if (queued == 0) break;
        std::this_thread::sleep_for(std::chrono::duration<double>(so.poll_seconds));
    }

    std::string failed;
    for (size_t i = 0; i < steps.size(); ++i) {
        if (!due[i]) continue;
        const nlohmann::json m = read_manifest(R, steps[i].name);
        if (m.is_null()) {
            failed += fmt::format("\n  {} (logs/{}.log, logs/slurm-{}-*.out)", steps[i].name,
                                  steps[i].name, steps[i].name);
            continue;
        }
        outcomes[i].seconds = m.value("seconds", 0.0);
    }
    if (!failed.empty()) {
        return error(StatusCode::Internal,
                     "Slurm jobs of these steps failed or were cancelled (run again to resume):{}",
                     failed);
    }
    return outcomes;
}

}  // namespace lowbit::pipeline
