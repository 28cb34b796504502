// A fresh folder for one test's files, under the system's temporary folder, removed with everything
// in it when the object goes out of scope (also when an assertion ends the test early).
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

namespace lathe::test {

class TemporaryDirectory {
 public:
  // Creates "<temp>/lathe_<suite>_<test>_<pid>_<n>", named after the running test ('/' of
  // parameterised names replaced by '_'), so tests in parallel processes (ctest -j) and several
  // folders in one test never share files.
  TemporaryDirectory() {
    static std::atomic<int> counter{0};
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name =
        info ? std::string(info->test_suite_name()) + "_" + info->name() : std::string("test");
    std::replace(name.begin(), name.end(), '/', '_');
    path_ = std::filesystem::temp_directory_path() /
            ("lathe_" + name + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TemporaryDirectory() {
    std::error_code ec;  // no throwing from a destructor: a folder left behind is harmless
    std::filesystem::remove_all(path_, ec);
  }
  TemporaryDirectory(const TemporaryDirectory&) = delete;
  TemporaryDirectory& operator=(const TemporaryDirectory&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // The path of `name` inside the folder (nothing is created).
  std::filesystem::path file(const std::string& name) const { return path_ / name; }
  // Writes `bytes` as the file `name` (binary, replacing any) and returns its path.
  std::filesystem::path write(const std::string& name, const std::string& bytes) const {
    const std::filesystem::path p = file(name);
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }
  // The names of the folder's entries, sorted.
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(path_)) {
      names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

 private:
  std::filesystem::path path_;
};

}  // namespace lathe::test
