// An output file written under a temporary name beside its final path and renamed into place only
// when complete, so a failed or interrupted write never leaves a partial file at the final path and
// never harms an earlier file there.
#pragma once

#include <filesystem>
#include <string>

namespace lathe {

class TemporaryOutput {
 public:
  explicit TemporaryOutput(std::filesystem::path final_path);
  // Removes the temporary file unless commit() succeeded.
  ~TemporaryOutput();
  TemporaryOutput(const TemporaryOutput&) = delete;
  TemporaryOutput& operator=(const TemporaryOutput&) = delete;

  // Where to write: "<dir>/.<name>.tmp-<pid>-<n>", in the same directory (same filesystem).
  const std::filesystem::path& path() const { return temporary_; }
  const std::filesystem::path& final_path() const { return final_; }
  // Atomically renames the finished file to the final path. The writer must have closed it.
  void commit();

 private:
  std::filesystem::path final_;
  std::filesystem::path temporary_;
  bool committed_ = false;
};

// `message` with every temporary name TemporaryOutput makes (".NAME.tmp-PID-N") replaced by the
// final name it stands for, so an error names the file the user asked for.
std::string name_final_paths(const std::string& message);

}  // namespace lathe
