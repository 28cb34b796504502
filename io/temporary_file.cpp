#include "io/temporary_file.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <climits>
#include <mutex>
#include <regex>
#include <set>
#include <system_error>
#include <vector>

#include "runtime/error.h"

namespace lathe {

namespace {

// The temporaries of this process's TemporaryOutputs that are still open, so that a TemporaryOutput
// of one of them writes it in place instead of adding a second temporary stage.
std::mutex live_temporaries_mutex;
std::set<std::filesystem::path>& live_temporaries() {
  static std::set<std::filesystem::path> paths;
  return paths;
}

const char* const kSuffixPattern = R"(\.tmp-([0-9]+)-([0-9]+)$)";

// True only when `text` is a process id that certainly names no running process. A PID that is not
// positive (kill(0) and kill(-1) address groups), out of range, or whose process we may not signal
// (EPERM: it exists) counts as alive.
bool process_is_gone(const std::string& text) {
  long long pid = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), pid);
  if (error != std::errc() || end != text.data() + text.size() || pid <= 0 || pid > INT_MAX) return false;
  return kill(static_cast<pid_t>(pid), 0) == -1 && errno == ESRCH;
}

// Whether `name` is the name of a temporary of the file named `final_name` made `stages` deep
// (1: ".F.tmp-P-N"; 2: "..F.tmp-P-N.tmp-P-M"), every one of its processes gone.
bool is_stale_temporary(const std::string& name, const std::string& final_name, int stages) {
  static const std::regex suffix(kSuffixPattern);
  std::string rest = name;
  std::vector<std::string> pids;
  for (int i = 0; i < stages; ++i) {
    std::smatch m;
    if (!std::regex_search(rest, m, suffix)) return false;
    pids.push_back(m[1].str());
    rest.erase(static_cast<std::size_t>(m.position(0)));
  }
  if (rest != std::string(static_cast<std::size_t>(stages), '.') + final_name) return false;
  for (const auto& pid : pids) {
    if (!process_is_gone(pid)) return false;
  }
  return true;
}

}  // namespace

std::string output_path_problem(const std::filesystem::path& final_path) {
  const auto dir = final_path.has_parent_path() ? final_path.parent_path() : std::filesystem::path(".");
  std::error_code ec;
  const auto dir_status = std::filesystem::status(dir, ec);
  // std::string(...) first: GCC 12 warns (-Wrestrict, falsely) on "literal" + std::string&&.
  if (!std::filesystem::exists(dir_status)) return std::string("the folder '") + dir.string() + "' does not exist";
  if (!std::filesystem::is_directory(dir_status)) return std::string("'") + dir.string() + "' is a file, not a folder";
  if (std::filesystem::is_directory(final_path, ec)) return "is a folder; give a file name";
  return "";
}

int remove_stale_temporaries(const std::filesystem::path& final_path) {
  const auto dir = final_path.has_parent_path() ? final_path.parent_path() : std::filesystem::path(".");
  const std::string final_name = final_path.filename().string();
  if (final_name.empty()) return 0;
  const std::string prefix = "." + final_name + ".tmp-";
  const std::string doubled_prefix = "." + prefix;
  int removed = 0;
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  // Best effort: a folder we cannot list or a file we cannot remove only leaves the litter there.
  for (; !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind(prefix, 0) != 0 && name.rfind(doubled_prefix, 0) != 0) continue;
    if (!is_stale_temporary(name, final_name, 1) && !is_stale_temporary(name, final_name, 2)) continue;
    std::error_code status_error;
    if (!std::filesystem::is_regular_file(it->symlink_status(status_error))) continue;
    std::error_code remove_error;
    if (std::filesystem::remove(it->path(), remove_error)) ++removed;
  }
  return removed;
}

TemporaryOutput::TemporaryOutput(std::filesystem::path final_path) : final_(std::move(final_path)) {
  static std::atomic<int> counter{0};
  {
    std::lock_guard<std::mutex> lock(live_temporaries_mutex);
    if (live_temporaries().count(final_) > 0) {
      in_place_ = true;
      temporary_ = final_;
      return;
    }
  }
  if (const std::string problem = output_path_problem(final_); !problem.empty()) {
    throw InputError(final_.string() + ": " + problem);
  }
  remove_stale_temporaries(final_);
  const auto dir = final_.has_parent_path() ? final_.parent_path() : std::filesystem::path(".");
  temporary_ = dir / (std::string(".") + final_.filename().string() + ".tmp-" + std::to_string(getpid()) + "-" +
                      std::to_string(counter++));
  std::lock_guard<std::mutex> lock(live_temporaries_mutex);
  live_temporaries().insert(temporary_);
}

TemporaryOutput::~TemporaryOutput() {
  if (in_place_) return;  // the enclosing TemporaryOutput removes or commits the file
  {
    std::lock_guard<std::mutex> lock(live_temporaries_mutex);
    live_temporaries().erase(temporary_);
  }
  if (!committed_) {
    std::error_code ec;
    std::filesystem::remove(temporary_, ec);
  }
}

void TemporaryOutput::commit() {
  if (!in_place_) {
    std::error_code ec;
    std::filesystem::rename(temporary_, final_, ec);
    if (ec) throw Error(final_.string() + ": cannot move the finished file into place: " + ec.message());
  }
  committed_ = true;
}

std::string name_final_paths(const std::string& message) {
  static const std::regex temporary(R"(\.([^/\s'"]+)\.tmp-[0-9]+-[0-9]+)");
  return std::regex_replace(message, temporary, "$1");
}

}  // namespace lathe
