// An output file written under a temporary name beside its final path and renamed into place only
// when complete, so a failed or interrupted write never leaves a partial file at the final path and
// never harms an earlier file there.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace lathe {

class TemporaryOutput {
 public:
  // Throws InputError naming `final_path` when it cannot be written (output_path_problem). A
  // `final_path` that is a symbolic link is written through: the temporary is made beside the file
  // the link (or chain of links) ends at and renamed onto it, so the link keeps pointing to the new
  // content, and final_path() is that file. Removes
  // the temporaries of `final_path` that processes no longer running left behind (a kill -9):
  // remove_stale_temporaries.
  //
  // When `final_path` is itself the temporary of a live TemporaryOutput of this process (a
  // checkpoint: the model file written into the checkpoint's temporary, then completed there),
  // that file is written in place: it is already unseen at its final path, and a second stage
  // would only add a second name to clean up after a kill.
  explicit TemporaryOutput(std::filesystem::path final_path);
  // Removes the temporary file unless commit() succeeded.
  ~TemporaryOutput();
  TemporaryOutput(const TemporaryOutput&) = delete;
  TemporaryOutput& operator=(const TemporaryOutput&) = delete;

  // Where to write: "<dir>/.<name>.tmp-<pid>-<n>", in the same directory (same filesystem).
  const std::filesystem::path& path() const { return temporary_; }
  const std::filesystem::path& final_path() const { return final_; }
  // Atomically renames the finished file to the final path. The writer must have closed it. A
  // file it replaces keeps its permission bits (the new file gets its mode, as `sed -i` does), so
  // replacing a private (0600) file does not make it readable by others.
  void commit();

 private:
  std::filesystem::path final_;
  std::filesystem::path temporary_;
  // A C-string copy of temporary_ that the signal handler may read (no allocation there), and its
  // slot in the handler's table, -1 when it has none; the copy outlives the slot's pointer to it.
  std::unique_ptr<char[]> temporary_for_signals_;
  int signal_slot_ = -1;
  bool committed_ = false;
  bool in_place_ = false;  // final_ is an enclosing TemporaryOutput's temporary: it owns the file
};

// Why `final_path` cannot be written as a file, or "" when it can: "the folder 'x' does not
// exist", "'d.h5' is a file, not a folder", "is a folder", "is not a regular file" (a device, FIFO
// or socket, which a rename would replace), a symbolic link to nothing, a regular file its user
// may not write (access(W_OK): EACCES), which the rename would replace although the user protected
// it. Existence of a writable regular file (or of a link to one) is fine.
std::string output_path_problem(const std::filesystem::path& final_path);

// Why no file can be made where `final_path`'s temporary would go, or "" when one can: makes a file
// under a name of the temporary's form (".NAME.tmp-PID-N", beside the file a symbolic link ends at)
// and removes it at once, so that an unwritable folder ("Permission denied", "Read-only file
// system") or a name that fits the system's limit while its temporary does not is found before a
// command reads or computes anything, not when it saves. Assumes output_path_problem found nothing.
std::string temporary_name_problem(const std::filesystem::path& final_path);

// Removes the temporary files of `final_path` (".NAME.tmp-PID-N" beside it, and the doubled
// "..NAME.tmp-PID-N.tmp-PID-M" that checkpoints of earlier versions made) whose every PID names a
// process that no longer exists (kill(pid, 0) fails with ESRCH). A name that does not match that
// pattern exactly, or whose process may still run, is never touched. Returns how many it removed.
int remove_stale_temporaries(const std::filesystem::path& final_path);

// Installs, once, handlers for SIGINT, SIGTERM, SIGHUP and SIGPIPE (a reader of stdout or stderr
// that went away: `lathe train ... 2>&1 | head`) that remove the temporary files of every
// live TemporaryOutput and then end the process by the same signal with its default action (the
// exit status still says which signal). A signal that was ignored when this is called (nohup)
// stays ignored. Temporaries left by SIGKILL are removed by remove_stale_temporaries.
void remove_temporaries_on_termination_signals();

// Lists `folder`, a scratch folder of files (`lathe bench`'s), for those handlers: a termination
// signal removes its files and then the folder, as it removes temporaries. `folder` must stay valid
// until unregister_scratch_folder(slot); -1 when the table is full (the folder is then left).
int register_scratch_folder(const char* folder);
void unregister_scratch_folder(int slot);

// Writes into the new scratch folder `folder` the marker ".lathe-owner" naming this process (its
// pid, the boot's id, its pid namespace and start time), by which remove_stale_scratch_folders
// tells a folder whose maker was killed (SIGKILL, the OOM killer) from one of a running process,
// even after the pid was reused. Best effort: a folder left without it is judged by its pid alone.
void mark_scratch_folder(const std::filesystem::path& folder);

// A scratch folder removed by remove_stale_scratch_folders: where it was, the pid of the process
// that made it and the bytes of the files it held.
struct StaleScratchFolder {
  std::filesystem::path path;
  long long pid;
  std::uintmax_t bytes;
};

// Removes, with everything in them, the scratch folders in `parent` named `prefix` + "PID-STAMP"
// exactly (decimal digits) that are folders (not links), owned by this user, and whose maker
// certainly no longer runs: its pid names no process (kill(pid, 0) fails with ESRCH), or names a
// process that the folder's marker (mark_scratch_folder) shows is not its maker. Any other entry,
// and every folder of a process that may still run, is left alone. Returns what it removed.
std::vector<StaleScratchFolder> remove_stale_scratch_folders(const std::filesystem::path& parent,
                                                             const std::string& prefix);

// `message` with every temporary this process's TemporaryOutputs made (".NAME.tmp-PID-N", as a
// path or a bare file name) replaced by the final path or name it stood for, so an error names the
// file the user asked for; other names, even ones that look like temporaries, are left alone.
std::string name_final_paths(const std::string& message);

}  // namespace lathe
