// TaskPool: the name the fast CPU path (kernels/cpu, layout reorders) uses for lowbit's one
// thread pool, core/thread_pool.h (claimed tasks; the reasons are written there).
#pragma once

#include "core/thread_pool.h"

namespace lowbit {

using TaskPool = ThreadPool;

}  // namespace lowbit
