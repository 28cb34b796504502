// Lathe's exception types, part of the public API (installed with include/lathe/scorer.h; standard
// library only). The library throws; only the CLI turns an exception into a message and an exit
// code (cli/main.cpp). Every exception Lathe throws on purpose derives from lathe::Error, so
// `catch (const lathe::Error&)` catches them all; std::bad_alloc can come through as well.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>

namespace lathe {

// Any failure inside Lathe. The message names what failed and where (file, dataset, column, line).
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The user's input is wrong: a missing or malformed file, a bad flag value, a ragged CSV row.
class InputError : public Error {
 public:
  using Error::Error;
};

// The command line itself is wrong, whatever the data: a missing required option, a value outside
// an option's range, options that contradict each other. The CLI exits with 2 for it (1 for any
// other error), as for the errors its option parser finds.
class UsageError : public InputError {
 public:
  using InputError::InputError;
};

// Training stopped because its loss or weights were no longer finite (the optimization diverged):
// the message names the epoch and what to try.
class DivergenceError : public Error {
 public:
  using Error::Error;
};

// A call into the HDF5 library failed. The message names the file and dataset and gives HDF5's
// reason; the failed call and its place in Lathe's source are kept apart in `call_site`, which the
// CLI prints only when LATHE_DEBUG is set to something other than "" or "0" (users need the reason,
// developers the call).
class Hdf5Error : public Error {
 public:
  explicit Hdf5Error(const std::string& what, std::string call_site = {})
      : Error(what), call_site_(std::move(call_site)) {}
  const std::string& call_site() const { return call_site_; }

 private:
  std::string call_site_;
};

// A CUDA or cuBLAS call failed. `sticky` marks errors that corrupt the CUDA context (illegal address,
// launch failure): the process cannot use the device again and must end.
class CudaError : public Error {
 public:
  CudaError(const std::string& what, bool sticky) : Error(what), sticky_(sticky) {}
  bool sticky() const { return sticky_; }

 private:
  bool sticky_;
};

}  // namespace lathe
