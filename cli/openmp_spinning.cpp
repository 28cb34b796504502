// How long the `lathe` command's OpenMP threads spin before they sleep.
//
// libgomp's threads spin at barriers and between parallel regions before they sleep: by default
// for 300,000 iterations when OMP_WAIT_POLICY is unset, about 17 ms of a core on the 2-core
// development VM after every region. On a machine where another process keeps a core busy, that
// spinning takes the core from the thread doing the work: `lathe train` of 200k rows took 1.25-1.31 s
// with 2 threads against 0.45 s with one, and 0.35-0.43 s with the spinning bounded as below
// (bench/RESULTS.md, session 23). With GOMP_SPINCOUNT=10000 (a fraction of a millisecond) a
// barrier inside a step still spins, and an idle thread soon sleeps.
//
// libgomp reads its settings from the environment once, in its constructor, before main (and
// before the C library has set `environ`, so not even the executable's preinit array can change
// them). So the command sets GOMP_SPINCOUNT and runs itself again, once, where the user set
// neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT. Programs that embed Lathe's library choose their own
// OpenMP settings.
#include "cli/openmp_spinning.h"

#include <unistd.h>

#include <cstdlib>

namespace lathe::cli {

namespace {
constexpr const char* kSpinCount = "10000";
// Set beside GOMP_SPINCOUNT in the run again, so that `lathe info` can say who set it.
constexpr const char* kSetByLathe = "LATHE_SET_GOMP_SPINCOUNT";
}  // namespace

void bound_openmp_spinning(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr || std::getenv("GOMP_SPINCOUNT") != nullptr) return;
  if (::setenv("GOMP_SPINCOUNT", kSpinCount, 1) != 0 || ::setenv(kSetByLathe, "1", 1) != 0) return;
  ::execv("/proc/self/exe", argv);
  // No /proc, say: run on with OpenMP's defaults, as the environment was.
  ::unsetenv("GOMP_SPINCOUNT");
  ::unsetenv(kSetByLathe);
}

std::string openmp_spinning() {
  const char* count = std::getenv("GOMP_SPINCOUNT");
  if (count != nullptr && std::getenv(kSetByLathe) != nullptr) return std::string("GOMP_SPINCOUNT=") + count + " (set by lathe)";
  if (const char* policy = std::getenv("OMP_WAIT_POLICY")) return std::string("OMP_WAIT_POLICY=") + policy;
  if (count != nullptr) return std::string("GOMP_SPINCOUNT=") + count;
  return "OpenMP's default";
}

}  // namespace lathe::cli
