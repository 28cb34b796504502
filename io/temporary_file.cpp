#include "io/temporary_file.h"

#include <unistd.h>

#include <atomic>
#include <regex>
#include <system_error>

#include "runtime/error.h"

namespace lathe {

TemporaryOutput::TemporaryOutput(std::filesystem::path final_path) : final_(std::move(final_path)) {
  static std::atomic<int> counter{0};
  const auto dir = final_.has_parent_path() ? final_.parent_path() : std::filesystem::path(".");
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    throw InputError(final_.string() + ": the folder '" + dir.string() + "' does not exist");
  }
  if (std::filesystem::is_directory(final_, ec)) {
    throw InputError(final_.string() + ": is a directory");
  }
  temporary_ = dir / ("." + final_.filename().string() + ".tmp-" + std::to_string(getpid()) + "-" +
                      std::to_string(counter++));
}

TemporaryOutput::~TemporaryOutput() {
  if (!committed_) {
    std::error_code ec;
    std::filesystem::remove(temporary_, ec);
  }
}

void TemporaryOutput::commit() {
  std::error_code ec;
  std::filesystem::rename(temporary_, final_, ec);
  if (ec) throw Error(final_.string() + ": cannot move the finished file into place: " + ec.message());
  committed_ = true;
}

std::string name_final_paths(const std::string& message) {
  static const std::regex temporary(R"(\.([^/\s'"]+)\.tmp-[0-9]+-[0-9]+)");
  return std::regex_replace(message, temporary, "$1");
}

}  // namespace lathe
