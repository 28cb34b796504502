#include "io/temporary_file.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <mutex>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
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

// The temporaries a termination signal's handler removes. The handler may not lock or allocate, so
// it reads this fixed table of C strings; a TemporaryOutput fills a free slot in its constructor and
// empties it once its temporary is renamed or removed. When all slots are taken (far more outputs at
// once than any command writes) a temporary goes unlisted: only stale cleanup removes it after a kill.
constexpr int kSignalSlotCount = 64;
std::atomic<const char*> temporaries_for_signals[kSignalSlotCount];

int take_signal_slot(const char* temporary) {
  for (int slot = 0; slot < kSignalSlotCount; ++slot) {
    const char* empty = nullptr;
    if (temporaries_for_signals[slot].compare_exchange_strong(empty, temporary)) return slot;
  }
  return -1;
}

void release_signal_slot(int& slot) {
  if (slot >= 0) temporaries_for_signals[slot].store(nullptr);
  slot = -1;
}

// The scratch folders a termination signal's handler empties and removes (register_scratch_folder),
// in the same kind of table.
constexpr int kScratchSlotCount = 8;
std::atomic<const char*> scratch_folders_for_signals[kScratchSlotCount];

// Removes the entries of `folder` (files; an empty subfolder) and then the folder, with system
// calls alone, as a signal handler may: getdents64 into a buffer on this thread's stack, unlinkat,
// rmdir. Signals in quick succession (a Ctrl-C and a SIGTERM) run a handler on each of two threads
// at once, each removing the same entries: a pass whose entries the other handler took removes
// none, and must still end in rmdir (returning there left the folder behind, empty, when this
// handler then ended the process before the other's rmdir). So the folder is listed and emptied
// until rmdir removes it, finds it gone, or fails otherwise, at most 16 passes.
void remove_scratch_folder(const char* folder) {
  struct Entry {  // struct linux_dirent64's fixed part
    std::uint64_t inode;
    std::int64_t offset;
    unsigned short length;
    unsigned char type;
    char name[1];
  };
  alignas(8) char listing[4096];  // not static: two handlers may list at once
  for (int pass = 0; pass < 16; ++pass) {
    if (rmdir(folder) == 0 || (errno != ENOTEMPTY && errno != EEXIST)) return;
    const int fd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    for (;;) {
      const long bytes = syscall(SYS_getdents64, fd, listing, sizeof listing);
      if (bytes <= 0) break;
      for (long at = 0; at < bytes;) {
        const auto* entry = reinterpret_cast<const Entry*>(listing + at);
        at += entry->length;
        const char* name = entry->name;
        if (name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'))) continue;
        if (unlinkat(fd, name, 0) != 0) unlinkat(fd, name, AT_REMOVEDIR);
      }
    }
    close(fd);
  }
}

extern "C" void remove_temporaries_and_reraise(int signal_number) {
  const int saved_errno = errno;
  for (auto& slot : temporaries_for_signals) {
    if (const char* temporary = slot.load()) unlink(temporary);
  }
  for (auto& slot : scratch_folders_for_signals) {
    if (const char* folder = slot.load()) remove_scratch_folder(folder);
  }
  errno = saved_errno;
  // The signal is blocked while its handler runs: it is delivered, with the default action, on return.
  signal(signal_number, SIG_DFL);
  raise(signal_number);
}

// Every temporary this process made, with the final path it stood for (as the user gave it), kept
// after the temporary is gone: an error reaches the CLI once the TemporaryOutput has unwound.
std::mutex made_temporaries_mutex;
std::vector<std::pair<std::string, std::string>>& made_temporaries() {
  static std::vector<std::pair<std::string, std::string>> made;
  return made;
}

// Numbers the temporaries (and the probes of temporary_name_problem) this process makes.
std::atomic<int> temporary_counter{0};

// The temporary that the next TemporaryOutput of `final_path` (symbolic links already followed)
// would write: "<dir>/.<name>.tmp-<pid>-<n>", n taken from temporary_counter.
std::filesystem::path next_temporary_of(const std::filesystem::path& final_path) {
  const auto dir = final_path.has_parent_path() ? final_path.parent_path() : std::filesystem::path(".");
  return dir / (std::string(".") + final_path.filename().string() + ".tmp-" + std::to_string(getpid()) + "-" +
                std::to_string(temporary_counter++));
}

// The message for a temporary `temporary` of `final_path` that could not be made (errno `error`).
std::string cannot_create_message(const std::filesystem::path& final_path, const std::filesystem::path& temporary,
                                  int error) {
  const auto dir = final_path.has_parent_path() ? final_path.parent_path() : std::filesystem::path(".");
  if (error == ENAMETOOLONG) {
    // The form, not the temporary's own name: name_final_paths would turn that into the final one.
    const std::size_t name_bytes = final_path.filename().string().size();
    const std::size_t temporary_bytes = temporary.filename().string().size();
    const long limit = ::pathconf(dir.c_str(), _PC_NAME_MAX);
    std::string text = "the file name is too long: the file is written first as '.NAME.tmp-PID-N' beside it, a name of " +
                       std::to_string(temporary_bytes) + " bytes";
    if (limit > 0 && static_cast<std::size_t>(limit) + name_bytes > temporary_bytes) {
      text += ", over the folder's limit of " + std::to_string(limit) + "; give a name of at most " +
              std::to_string(static_cast<std::size_t>(limit) + name_bytes - temporary_bytes) + " bytes";
    } else {
      text += "; give a shorter name";
    }
    return text;
  }
  return "cannot write in the folder '" + dir.string() + "': " + std::strerror(error);
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
  const auto file_status = std::filesystem::status(final_path, ec);  // through symbolic links
  if (std::filesystem::is_directory(file_status)) return "is a folder; give a file name";
  if (std::filesystem::exists(file_status) && !std::filesystem::is_regular_file(file_status)) {
    return "is not a regular file (a device, FIFO or socket); give a file path";
  }
  if (std::filesystem::is_symlink(std::filesystem::symlink_status(final_path, ec)) &&
      !std::filesystem::exists(file_status)) {
    return std::string("is a symbolic link to '") + std::filesystem::read_symlink(final_path, ec).string() +
           "', which does not exist; give a file path";
  }
  // The rename that replaces a file needs only the folder's permission: a file its user may not
  // write (write-protected with chmod a-w, or another user's) would be replaced where the shell's
  // `>`, pandas or h5py would fail. Refused as they refuse it.
  if (std::filesystem::is_regular_file(file_status) && ::access(final_path.c_str(), W_OK) != 0 &&
      errno == EACCES) {
    return "the file exists and may not be written (Permission denied: write-protected, or another "
           "user's), so it is not replaced; make it writable (chmod u+w) or give another path";
  }
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

std::string temporary_name_problem(const std::filesystem::path& final_path) {
  std::filesystem::path final = final_path;
  std::error_code link_error;
  if (std::filesystem::is_symlink(std::filesystem::symlink_status(final, link_error))) {
    final = std::filesystem::canonical(final_path, link_error);
    if (link_error) return "cannot follow the symbolic link: " + link_error.message();
  }
  const std::filesystem::path probe = next_temporary_of(final);
  // Listed for the signal handlers while it exists, as a temporary is; a SIGKILL leaves a name
  // that remove_stale_temporaries knows.
  const std::string probe_text = probe.string();
  int slot = take_signal_slot(probe_text.c_str());
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  const int error = errno;
  if (fd >= 0) {
    ::close(fd);
    ::unlink(probe.c_str());
  }
  release_signal_slot(slot);
  return fd >= 0 ? std::string() : cannot_create_message(final, probe, error);
}

TemporaryOutput::TemporaryOutput(std::filesystem::path final_path) : final_(std::move(final_path)) {
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
  const std::string asked_for = final_.string();
  // Write through a symbolic link: renaming onto the link itself would replace it with a file.
  std::error_code link_error;
  if (std::filesystem::is_symlink(std::filesystem::symlink_status(final_, link_error))) {
    const std::filesystem::path link = final_;
    final_ = std::filesystem::canonical(link, link_error);
    if (link_error) throw InputError(link.string() + ": cannot follow the symbolic link: " + link_error.message());
  }
  remove_stale_temporaries(final_);
  temporary_ = next_temporary_of(final_);
  const std::string temporary_text = temporary_.string();
  {
    std::lock_guard<std::mutex> lock(made_temporaries_mutex);
    made_temporaries().emplace_back(temporary_text, asked_for);
    made_temporaries().emplace_back(temporary_.filename().string(), std::filesystem::path(asked_for).filename().string());
  }
  temporary_for_signals_ = std::make_unique<char[]>(temporary_text.size() + 1);
  std::memcpy(temporary_for_signals_.get(), temporary_text.c_str(), temporary_text.size() + 1);
  signal_slot_ = take_signal_slot(temporary_for_signals_.get());
  // The folder must take a new file. Found here, the reason is the system's ("Permission denied",
  // "Read-only file system") in one message for every writer, not an HDF5 call's wording after the
  // inputs were read. The writers then truncate this empty file. Made after the signal table lists
  // it, so a signal from the moment it exists removes it.
  const int fd = ::open(temporary_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) {
    const int error = errno;
    release_signal_slot(signal_slot_);  // before temporary_for_signals_ is freed as this throws
    throw InputError(final_.string() + ": " + cannot_create_message(final_, temporary_, error));
  }
  ::close(fd);
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
  // After the removal, so a signal during it still finds the file; before temporary_for_signals_ is freed.
  release_signal_slot(signal_slot_);
}

void TemporaryOutput::commit() {
  if (!in_place_) {
    // The file replaced keeps its permission bits; a new file keeps the umask's.
    struct stat replaced {};
    if (::stat(final_.c_str(), &replaced) == 0 && S_ISREG(replaced.st_mode) &&
        ::chmod(temporary_.c_str(), replaced.st_mode & 0777) != 0) {
      throw Error(final_.string() + ": cannot give the new file the permissions of the one it replaces: " +
                  std::strerror(errno));
    }
    std::error_code ec;
    std::filesystem::rename(temporary_, final_, ec);
    if (ec) throw Error(final_.string() + ": cannot move the finished file into place: " + ec.message());
    release_signal_slot(signal_slot_);  // the temporary name is gone; the final file must stay
  }
  committed_ = true;
}

void remove_temporaries_on_termination_signals() {
  static std::once_flag installed;
  std::call_once(installed, [] {
    const int termination_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};
    struct sigaction handler {};
    handler.sa_handler = remove_temporaries_and_reraise;
    // One handler at a time: a second signal waits, then ends the process by its default action.
    sigemptyset(&handler.sa_mask);
    for (const int signal_number : termination_signals) sigaddset(&handler.sa_mask, signal_number);
    handler.sa_flags = SA_RESTART;
    for (const int signal_number : termination_signals) {
      struct sigaction current {};
      if (sigaction(signal_number, nullptr, &current) == 0 && current.sa_handler == SIG_IGN) continue;
      sigaction(signal_number, &handler, nullptr);
    }
  });
}

std::string name_final_paths(const std::string& message) {
  std::string named = message;
  std::lock_guard<std::mutex> lock(made_temporaries_mutex);
  // Whole paths first, then bare file names; only names this process made, so an input that merely
  // looks like a temporary keeps its own name.
  for (const auto& [temporary, final_name] : made_temporaries()) {
    for (std::size_t at = named.find(temporary); at != std::string::npos;
         at = named.find(temporary, at + final_name.size())) {
      named.replace(at, temporary.size(), final_name);
    }
  }
  return named;
}

int register_scratch_folder(const char* folder) {
  for (int slot = 0; slot < kScratchSlotCount; ++slot) {
    const char* empty = nullptr;
    if (scratch_folders_for_signals[slot].compare_exchange_strong(empty, folder)) return slot;
  }
  return -1;
}

void unregister_scratch_folder(int slot) {
  if (slot >= 0 && slot < kScratchSlotCount) scratch_folders_for_signals[slot].store(nullptr);
}

namespace {

// The file in a scratch folder that says which process made it (mark_scratch_folder).
constexpr const char* kScratchOwnerFile = ".lathe-owner";

// The first line of a file (of /proc), "" when it cannot be read.
std::string first_line_of(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// This boot's random id: a marker of an earlier boot names a process that cannot run now.
std::string boot_id() { return first_line_of("/proc/sys/kernel/random/boot_id"); }

// The pid namespace this process sees process ids in ("pid:[4026531836]"), "" when unknown.
std::string pid_namespace() {
  char target[128];
  const ssize_t length = ::readlink("/proc/self/ns/pid", target, sizeof target - 1);
  return length > 0 ? std::string(target, static_cast<std::size_t>(length)) : std::string();
}

// When process `pid` started, in clock ticks since boot (field 22 of /proc/PID/stat), "" when
// unknown.
std::string start_time_of(long long pid) {
  const std::string stat = first_line_of("/proc/" + std::to_string(pid) + "/stat");
  // Field 2, the command's name in parentheses, may hold spaces and ')'.
  const std::size_t name_end = stat.rfind(')');
  if (name_end == std::string::npos) return "";
  std::istringstream fields(stat.substr(name_end + 1));
  std::string field;
  for (int number = 3; number <= 22; ++number) {
    if (!(fields >> field)) return "";
  }
  return field;
}

// What a scratch folder's marker says of the process that made it; a field it lacks is "".
struct ScratchOwner {
  std::string boot_id;
  std::string pid_namespace;
  std::string start_time;
};

std::optional<ScratchOwner> read_scratch_owner(const std::filesystem::path& folder) {
  std::ifstream in(folder / kScratchOwnerFile);
  if (!in) return std::nullopt;
  ScratchOwner owner;
  std::string key, value;
  while (in >> key >> value) {
    if (key == "boot_id") owner.boot_id = value;
    if (key == "pid_namespace") owner.pid_namespace = value;
    if (key == "start_time") owner.start_time = value;
  }
  return owner;
}

// True only when the process `pid` that made the scratch folder `folder` certainly no longer runs.
// kill(pid, 0) failing with ESRCH says so. A pid that names a running process may have been reused
// since the maker was killed: the folder's marker then tells them apart by the boot (a folder kept
// across a reboot, TMPDIR on a disk) and by the process's start time. A folder without a marker
// (made by a lathe before markers, or by a bench that has not yet written it) counts as live while
// its pid runs. A marker from another pid namespace (a container sharing this TMPDIR) names a
// process this one cannot see: left alone. The small risk left: a folder of an older lathe without
// a marker, made in another pid namespace whose pid names nothing here.
bool scratch_maker_is_gone(long long pid, const std::filesystem::path& folder) {
  const std::optional<ScratchOwner> owner = read_scratch_owner(folder);
  const bool other_namespace =
      owner && !owner->pid_namespace.empty() && owner->pid_namespace != pid_namespace();
  if (other_namespace) return false;
  if (process_is_gone(std::to_string(pid))) return true;
  if (!owner) return false;
  const std::string boot = boot_id();
  if (boot.empty() || owner->boot_id.empty()) return false;
  if (owner->boot_id != boot) return true;
  const std::string start = start_time_of(pid);
  return !start.empty() && !owner->start_time.empty() && owner->start_time != start;
}

// The pid of `name` when it is `prefix` + "PID-STAMP" exactly (decimal digits, no leading zero in
// the pid), else -1.
long long scratch_folder_pid(const std::string& name, const std::string& prefix) {
  if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) return -1;
  const std::string rest = name.substr(prefix.size());
  const std::size_t dash = rest.find('-');
  if (dash == std::string::npos || dash == 0 || dash + 1 == rest.size()) return -1;
  if (rest[0] == '0') return -1;  // a pid is written without leading zeros
  const auto all_digits = [](const std::string& text) {
    return std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  const std::string pid_text = rest.substr(0, dash);
  if (!all_digits(pid_text) || !all_digits(rest.substr(dash + 1))) return -1;
  if (pid_text.size() > 10) return -1;
  const long long pid = std::stoll(pid_text);
  return pid <= INT_MAX ? pid : -1;
}

// The bytes of the regular files under `folder`.
std::uintmax_t bytes_under(const std::filesystem::path& folder) {
  std::uintmax_t bytes = 0;
  std::error_code ec;
  for (std::filesystem::recursive_directory_iterator it(folder, ec), end; !ec && it != end;
       it.increment(ec)) {
    std::error_code entry_error;
    if (!std::filesystem::is_regular_file(it->symlink_status(entry_error))) continue;
    const std::uintmax_t size = it->file_size(entry_error);
    if (!entry_error) bytes += size;
  }
  return bytes;
}

}  // namespace

void mark_scratch_folder(const std::filesystem::path& folder) {
  std::ofstream out(folder / kScratchOwnerFile);
  out << "pid " << ::getpid() << "\nboot_id " << boot_id() << "\npid_namespace " << pid_namespace()
      << "\nstart_time " << start_time_of(::getpid()) << "\n";
}

std::vector<StaleScratchFolder> remove_stale_scratch_folders(const std::filesystem::path& parent,
                                                             const std::string& prefix) {
  std::vector<StaleScratchFolder> removed;
  std::error_code ec;
  std::filesystem::directory_iterator it(parent, ec);
  // Best effort, as remove_stale_temporaries: what cannot be listed or removed stays.
  for (; !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    const std::filesystem::path folder = it->path();
    const long long pid = scratch_folder_pid(folder.filename().string(), prefix);
    if (pid < 0) continue;
    struct stat st {};
    // A folder itself (not a link to one), and this user's: never another user's, even where we may
    // remove it.
    if (::lstat(folder.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    if (st.st_uid != ::geteuid()) continue;
    if (!scratch_maker_is_gone(pid, folder)) continue;
    const std::uintmax_t bytes = bytes_under(folder);
    std::error_code remove_error;
    std::filesystem::remove_all(folder, remove_error);
    if (!remove_error) removed.push_back({folder, pid, bytes});
  }
  return removed;
}

}  // namespace lathe
