// SIGINT/SIGTERM -> a flag and a watcher thread's callback (stop_signal.hpp).
#include "cli/stop_signal.hpp"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "mnist/error.hpp"

namespace mnist::cli {

namespace {

std::atomic<bool> g_stop{false};
int g_pipe[2] = {-1, -1};
struct sigaction g_old_int {};
struct sigaction g_old_term {};

void on_signal(int signum) {
  if (g_stop.exchange(true)) {
    ::signal(signum, SIG_DFL);  // a second signal: end at once
    ::raise(signum);
    return;
  }
  const char byte = static_cast<char>(signum);
  [[maybe_unused]] const auto n = ::write(g_pipe[1], &byte, 1);  // async-signal-safe
}

}  // namespace

StopOnSignal::StopOnSignal(std::function<void(int signal)> on_stop) {
  if (::pipe(g_pipe) != 0) {
    throw IoError("cannot create a pipe for signal handling");
  }
  g_stop = false;
  struct sigaction action {};
  action.sa_handler = on_signal;
  action.sa_flags = SA_RESTART;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, &g_old_int);
  sigaction(SIGTERM, &action, &g_old_term);
  watcher_ = std::thread([on_stop = std::move(on_stop)] {
    char byte = 0;
    while (::read(g_pipe[0], &byte, 1) < 0 && errno == EINTR) {
    }
    if ((byte == SIGINT || byte == SIGTERM) && on_stop) {
      on_stop(byte);
    }
  });
}

StopOnSignal::~StopOnSignal() {
  const char wake = 0;  // the command ended first: let the watcher go
  [[maybe_unused]] const auto n = ::write(g_pipe[1], &wake, 1);
  watcher_.join();
  sigaction(SIGINT, &g_old_int, nullptr);
  sigaction(SIGTERM, &g_old_term, nullptr);
  ::close(g_pipe[0]);
  ::close(g_pipe[1]);
  g_pipe[0] = g_pipe[1] = -1;
}

const std::atomic<bool>& StopOnSignal::flag() const { return g_stop; }

}  // namespace mnist::cli
