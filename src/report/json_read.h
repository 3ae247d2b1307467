// Reading small JSON input files (reports, results): the typed accessor lives in core/json_at.h
// (errors name the file and the key path); these names keep report/'s spelling.
#pragma once

#include "core/json_at.h"

namespace lowbit::report {

using lowbit::json_root;
using lowbit::JsonAt;
using lowbit::read_json_file;

}  // namespace lowbit::report
