// Shared by the fuzz harnesses: a private scratch folder (tmpfs when there
// is one) and whole-file writes, since the readers under test take paths.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <unistd.h>

namespace mnist::fuzz {

/// A folder of this process's own, made once.
inline const std::string& scratch_dir() {
  static const std::string dir = [] {
    const char* base = std::getenv("MNIST_FUZZ_TMP");
    std::string tmpl = std::string(base != nullptr ? base
                                   : access("/dev/shm", W_OK) == 0 ? "/dev/shm"
                                                                   : "/tmp") +
                       "/mnist-fuzz-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) {
      std::perror("mkdtemp");
      std::abort();
    }
    return tmpl;
  }();
  return dir;
}

/// Replaces `path` with `size` bytes from `data`.
inline void write_bytes(const std::string& path, const uint8_t* data, size_t size) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr || (size > 0 && std::fwrite(data, 1, size, f) != size) ||
      std::fclose(f) != 0) {
    std::perror(path.c_str());
    std::abort();
  }
}

}  // namespace mnist::fuzz
