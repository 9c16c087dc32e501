// --csv-log: one row per epoch, as Keras's CSVLogger writes them.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "mnist/train.hpp"

namespace mnist {

/// Keras's CSVLogger(separator=","): a header line, then one row per epoch,
/// written and flushed when the epoch ends. Columns, as Keras orders them
/// (epoch, then the logs' keys sorted): epoch (0-based, as Keras numbers
/// it), acc, loss, lr (the rate the epoch trained with), val_acc, val_loss
/// ("NA" without a validation set, as Keras writes a missing key); numbers
/// in their shortest exact form (Python's repr), NaN as "nan". Lines end
/// in "\n" (Keras's csv.excel dialect writes "\r\n").
class CsvLog {
 public:
  /// Opens `path`. With `append` (Keras's append=True, for --resume) an
  /// existing file keeps its header and the rows of epochs before
  /// `first_epoch` (1-based); rows of later epochs, which the resumed run
  /// trains again, are dropped first (the file is rewritten atomically). A
  /// file whose header differs is refused. Without `append` the file is
  /// replaced. Throws IoError or ConfigError.
  CsvLog(const std::string& path, bool append, int64_t first_epoch, bool with_validation);
  ~CsvLog();
  CsvLog(const CsvLog&) = delete;
  CsvLog& operator=(const CsvLog&) = delete;

  /// Appends the epoch's row and flushes it. Throws IoError.
  void write(const EpochStats& stats);

  /// The header line (without its newline).
  static std::string header();

 private:
  std::string path_;
  bool with_validation_;
  std::FILE* file_ = nullptr;
};

}  // namespace mnist
