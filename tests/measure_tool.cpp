// Test tool: runs a command and prints its wall time and peak RSS (from
// wait4), failing when the peak is above a limit. A program of its own, not
// linked to libtorch, so that its own memory does not count in the child's.
//   mnist_measure MAX_RSS_MB CMD [ARGS...]
// Exits with CMD's exit code, or 1 when the peak RSS is above MAX_RSS_MB.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: mnist_measure MAX_RSS_MB CMD [ARGS...]\n");
    return 2;
  }
  const long max_rss_mb = std::atol(argv[1]);
  const auto start = std::chrono::steady_clock::now();
  const pid_t pid = fork();
  if (pid == 0) {
    execvp(argv[2], argv + 2);
    std::perror(argv[2]);
    _exit(127);
  }
  int status = 0;
  struct rusage usage {};
  if (pid < 0 || wait4(pid, &status, 0, &usage) != pid) {
    std::perror("mnist_measure");
    return 1;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const long rss_mb = usage.ru_maxrss / 1024;  // KiB on Linux
  const int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  std::printf("measure: exit %d, %.2f s wall, peak RSS %ld MB (limit %ld MB): %s\n", rc, seconds,
              rss_mb, max_rss_mb, argv[2]);
  return rss_mb > max_rss_mb ? 1 : rc;
}
