// Error types thrown by the core library and the exit codes the CLI maps them
// to. The core never prints and never exits: it throws one of these.
#pragma once

#include <stdexcept>
#include <string>

namespace mnist {

/// Base of every error the core library throws on purpose.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Bad or missing input data (IDX files).
class DataError : public Error {
 public:
  using Error::Error;
};

/// A file in the wrong format (model.json, weights).
class FormatError : public Error {
 public:
  using Error::Error;
};

/// A file or folder that cannot be read or written.
class IoError : public Error {
 public:
  using Error::Error;
};

/// The requested device (CUDA) is not usable.
class DeviceError : public Error {
 public:
  using Error::Error;
};

/// Settings that are invalid together (checked before any work starts).
class ConfigError : public Error {
 public:
  using Error::Error;
};

/// Process exit codes, documented in README.md ("Exit codes").
enum class ExitCode : int {
  kOk = 0,
  kInternal = 1,  ///< an unexpected error (a bug: please report it)
  kUsage = 2,     ///< bad command line or settings
  kData = 3,      ///< missing or malformed MNIST data
  kIo = 4,        ///< cannot read or write a file (e.g. the save path)
  kDevice = 5,    ///< --gpu asked for but CUDA is not available
  kInterrupted = 130,  ///< stopped by SIGINT/SIGTERM (128 + SIGINT, as shells say)
};

}  // namespace mnist
