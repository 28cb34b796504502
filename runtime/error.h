// Lathe's exception types. The library throws; only the CLI turns an exception into a message and
// an exit code (cli/main.cpp).
#pragma once

#include <stdexcept>
#include <string>

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

// A call into the HDF5 library failed; the message carries the call text, source location and the
// innermost HDF5 error description.
class Hdf5Error : public Error {
 public:
  using Error::Error;
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
