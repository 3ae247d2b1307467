// Typed steps and the runner that executes them in order under a run root, with the resume
// rules of pipeline/run_manifest.h: a step whose command lines, inputs' content and program are
// unchanged since it last finished (and whose outputs are intact) is skipped.
//
// A step is data (name, title, the equivalent standalone command lines, input and output paths)
// plus a function that does the work by calling the library, writing what the standalone
// command would print on stdout to the log stream it is given (<root>/logs/<name>.log). Knowing
// each step's inputs and outputs is what lets another executor (a batch scheduler, shards) run
// the same graph.
#pragma once

#include <cstdio>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/status.h"
#include "pipeline/run_manifest.h"
#include "pipeline/shard.h"

namespace lowbit::pipeline {

// What a step's function is given.
struct StepContext {
    std::FILE* log = nullptr;  // the step's results text (its command's stdout)
};

struct Step {
    std::string name;   // unique: logs/<name>.log, .lowbit-run/<name>.json, --force-step NAME
    std::string title;  // what it does, in words
    // The standalone command lines (lowbit argv without "lowbit") that do what this step does:
    // printed as it starts (users copy them) and recorded, so a changed option reruns it.
    std::vector<std::vector<std::string>> commands;
    // Further records of what the step does beyond its commands (e.g. the results files it
    // writes): recorded, not printed.
    std::vector<std::vector<std::string>> notes;
    std::vector<std::string> inputs;   // files/folders it reads
    std::vector<std::string> outputs;  // files/folders it writes
    std::function<Status(StepContext&)> run;
    // Called just before the step is checked, for steps whose inputs or commands depend on
    // what earlier steps wrote.
    std::function<void(Step&)> prepare;
    // Steps whose job can be split (evaluations, sensitivity, candidates; pipeline/shard.h):
    // run shard I of N into the shard folder, and finish the step from a complete set of shards
    // (`lowbit merge` plus what the step writes after its job). Empty: the step runs whole.
    std::function<Status(StepContext&, const ShardOptions&)> run_shard;
    std::function<Status(StepContext&, const std::string& shard_dir)> run_merged;
    // Reads whatever earlier steps left (compare): depends on every earlier step.
    bool after_all = false;
};

// The manifest record of a step: commands, notes, then ("(lowbit)", program_hash) when given.
StepSpec step_spec(const Step& step, const std::string& program_hash);

enum class StepStatus { Ran, Skipped, Unavailable };
const char* step_status_name(StepStatus s);  // "ran", "skipped", "unavailable"

struct StepOutcome {
    std::string name;
    std::string title;
    StepStatus status = StepStatus::Ran;
    double seconds = 0;                      // wall time of this run (0 unless ran)
    std::optional<double> recorded_seconds;  // skipped: the time its recorded run took
    std::string why;                         // unavailable: the reason
};

struct RunStepsOptions {
    bool force = false;            // redo every step
    std::set<std::string> forced;  // redo these steps
    // Hash of the program, an input of every step (another build may compute other results);
    // empty: not recorded.
    std::string program_hash;
    std::FILE* progress = stderr;  // one line per step, the command lines, errors
    std::set<std::string> only;    // non-empty: run only these steps (a scheduler's job)
};

// Runs `steps` in order under `root` (logs/ must exist). A step whose input is missing is left
// out as Unavailable and the run goes on; a step that fails stops the run with an error naming
// it and its log (after printing its error as its standalone command would).
Result<std::vector<StepOutcome>> run_steps(std::vector<Step>& steps, const std::string& root,
                                           const RunStepsOptions& options, Fingerprinter& fp);

// Checks that every name in `forced` is a step. InvalidArgument names the first unknown one.
Status check_step_names(const std::vector<Step>& steps, const std::set<std::string>& forced);

// The command line as a shell would take it: words with blanks or quotes single-quoted.
std::string join_command(const std::vector<std::string>& argv);

}  // namespace lowbit::pipeline
