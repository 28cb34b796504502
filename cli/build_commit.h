// The git commit lathe was built from, for `lathe --version` and every bench's JSON ("commit").
#pragma once

namespace lathe::cli {

// "0123456789ab" (12 hex digits), with "-dirty" when tracked files had uncommitted changes, or
// nullptr when the sources were not a git checkout (a tarball). Defined in a source that the build
// generates (cmake/LatheCommit.cmake) and rewrites only when the commit changes: only that file is
// recompiled after a commit.
const char* build_commit();

}  // namespace lathe::cli
