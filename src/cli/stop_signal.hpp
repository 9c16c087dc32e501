// Ctrl-C (SIGINT) and SIGTERM for the life of a command, the one stop
// mechanism of every command that runs until stopped (train, serve).
#pragma once

#include <atomic>
#include <functional>
#include <thread>

namespace mnist::cli {

/// While it lives, the first SIGINT or SIGTERM sets flag() and, when given,
/// calls `on_stop(signal)` from a watcher thread (a signal may land on any
/// thread, libtorch's too, so the handler itself only sets the flag and
/// writes to a pipe). A second signal ends the process at once. The old
/// handlers are restored when it is destroyed. One at a time per process.
class StopOnSignal {
 public:
  explicit StopOnSignal(std::function<void(int signal)> on_stop = {});
  StopOnSignal(const StopOnSignal&) = delete;
  StopOnSignal& operator=(const StopOnSignal&) = delete;
  ~StopOnSignal();

  /// True once a stop was asked for (training checks it after each batch).
  const std::atomic<bool>& flag() const;

 private:
  std::thread watcher_;
};

}  // namespace mnist::cli
