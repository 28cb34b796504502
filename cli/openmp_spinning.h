// The OpenMP spinning of the `lathe` command (cli/openmp_spinning.cpp).
#pragma once

#include <string>

namespace lathe::cli {

// Where the user set neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT: sets GOMP_SPINCOUNT to a small
// count and runs the command again (execv of /proc/self/exe with `argv`), so that libgomp reads it;
// does not return then. Returns, changing nothing, where either is set or the run again fails.
// First thing in main, before anything is opened or started.
void bound_openmp_spinning(char** argv);

// How the command's OpenMP threads wait, as `lathe info` shows it: "GOMP_SPINCOUNT=10000 (set by
// lathe)", else the user's OMP_WAIT_POLICY or GOMP_SPINCOUNT, else "OpenMP's default".
std::string openmp_spinning();

}  // namespace lathe::cli
