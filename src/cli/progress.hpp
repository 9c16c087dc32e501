// Renders the core's training callbacks on the console: a live progress bar
// with ETA on a terminal, one plain line per epoch otherwise (CI logs).
#pragma once

#include <cstdio>

#include "mnist/train.hpp"

namespace mnist::cli {

class ProgressPrinter {
 public:
  /// `live`: draw a \r progress bar on `out` (only when it is a terminal).
  ProgressPrinter(std::FILE* out, bool live);

  void on_batch(const BatchProgress& p);
  void on_epoch(const EpochStats& s, int64_t epochs, bool show_learning_rate = false);

  /// Clears a partly drawn progress line (before printing anything else).
  void finish_line();

  /// Whether `file` is a terminal.
  static bool is_terminal(std::FILE* file);

 private:
  std::FILE* out_;
  bool live_;
};

}  // namespace mnist::cli
