// Renders the core's training callbacks on the console: a live progress bar
// with ETA on a terminal, one plain line per epoch otherwise (CI logs).
#pragma once

#include <cstdio>

#include "mnist/image_folder.hpp"
#include "mnist/train.hpp"

namespace mnist::cli {

class ProgressPrinter {
 public:
  /// `live`: draw a \r progress bar on `out` (only when it is a terminal).
  ProgressPrinter(std::FILE* out, bool live);

  /// Decoding a folder's images: a bar with images/s and ETA on a
  /// terminal; otherwise a line every 10 s of a long decode.
  void on_decode(const DecodeProgress& p);
  void on_batch(const BatchProgress& p);
  void on_epoch(const EpochStats& s, int64_t epochs, bool show_learning_rate = false);

  /// Clears a partly drawn progress line (before printing anything else).
  void finish_line();

  /// Whether `file` is a terminal.
  static bool is_terminal(std::FILE* file);

 private:
  std::FILE* out_;
  bool live_;
  double last_decode_line_ = 0;
};

}  // namespace mnist::cli
