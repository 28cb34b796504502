// The fewest items (rows, entries) that a simple loop spreads over the OpenMP team. Below it the
// loop runs on the calling thread: waking the team costs more than the loop, and on a busy machine
// a team thread that has been descheduled makes the region wait out a time slice. Training on a
// few thousand rows runs several such loops an epoch (the validation metrics, the checks, the next
// epoch's order); with the team each cost milliseconds on a loaded 2-core machine.
#pragma once

#include <cstdint>

namespace lathe {

inline constexpr std::int64_t kTeamMinItems = std::int64_t{1} << 15;

}  // namespace lathe
