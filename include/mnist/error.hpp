// Error types thrown by the core library and the exit codes the CLI maps them
// to. The core never prints and never exits: it throws one of these.
#pragma once

#include <stdexcept>
#include <string>

namespace mnist {

/// What the user can change to get past an error. The core names no CLI
/// flag: it says what is wrong, and the CLI words the remedy as its own
/// flag (src/cli/app.cpp).
enum class Remedy {
  kNone,
  kDataFolder,             ///< fetch MNIST, or use another data folder
  kInvertImage,            ///< the image shows dark ink on a light background
  kNoCudaGraphs,           ///< train without CUDA graphs
  kSaveModelFirst,         ///< a folder to serve holds no saved model yet
  kAnyPort,                ///< listen on another (any free) port
  kOtherModelFolder,       ///< save the model into another folder
  kOtherCheckpointFolder,  ///< write checkpoints into another folder
  kSameSettings,           ///< resume a checkpoint with the settings it was made with
  kImageSize,              ///< give the size to resize a folder's images to
  kSkipBadImages,          ///< train without the images that cannot be read
};

/// Base of every error the core library throws on purpose.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what, Remedy remedy = Remedy::kNone)
      : std::runtime_error(what), remedy_(remedy) {}
  Remedy remedy() const { return remedy_; }

 private:
  Remedy remedy_;
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

/// Work given up because a stop was asked for (the stop flag a caller
/// passed, set by SIGINT/SIGTERM in the CLI): not a failure, the CLI exits
/// with kInterrupted.
class Interrupted : public Error {
 public:
  using Error::Error;
};

/// Settings that are invalid together (checked before any work starts).
class ConfigError : public Error {
 public:
  using Error::Error;
};

/// Process exit codes, documented in docs/reliability.md ("Exit codes").
enum class ExitCode : int {
  kOk = 0,
  kInternal = 1,       ///< an unexpected error (a bug: please report it)
  kUsage = 2,          ///< bad command line or settings
  kData = 3,           ///< missing or malformed MNIST data
  kIo = 4,             ///< cannot read or write a file (e.g. the save path)
  kDevice = 5,         ///< --gpu asked for but CUDA is not available
  kInterrupted = 130,  ///< stopped by SIGINT/SIGTERM (128 + SIGINT, as shells say)
};

}  // namespace mnist
