// Lathe's exception types live in the public header include/lathe/error.h (installed, so that a
// program using the installed library can catch them); this header keeps the library's includes.
#pragma once
#include "lathe/error.h"  // IWYU pragma: export
