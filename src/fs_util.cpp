// File safety: atomic writes through fsync + rename, folder fsync, the sweep
// of killed writers' leftovers, the writable-folder probe, bounded JSON.
#include "mnist/fs_util.hpp"

#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "mnist/error.hpp"

namespace fs = std::filesystem;

namespace mnist {

namespace {

constexpr const char* kTmpTag = ".tmp.";
constexpr const char* kProbePrefix = ".mnist-train-probe.";

[[noreturn]] void io_fail(const std::string& path, const std::string& what, int err) {
  throw IoError(path + ": " + what + " (" + std::strerror(err) + ")");
}

void write_all(int fd, const char* data, size_t size, const std::string& path) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      io_fail(path, "cannot write", errno);
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
}

fs::path parent_of(const fs::path& path) {
  return path.has_parent_path() ? path.parent_path() : fs::path(".");
}

/// The temporary name write_file_atomic and replace_with_link use for `target`.
fs::path temporary_for(const fs::path& target) {
  return parent_of(target) /
         ("." + target.filename().string() + kTmpTag + std::to_string(::getpid()));
}

void write_atomic(const std::string& path, const char* data, size_t size) {
  const fs::path target(path);
  const std::string tmp = temporary_for(target).string();
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    io_fail(tmp, "cannot create temporary file", errno);
  }
  try {
    // Errors name the file being written, not its temporary name.
    write_all(fd, data, size, path);
    if (::fsync(fd) != 0) {
      io_fail(path, "cannot flush to disk", errno);
    }
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    io_fail(path, "cannot write", err);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    io_fail(path, "cannot replace with the new file", err);
  }
  sync_dir(parent_of(target).string());  // make the rename itself durable
}

}  // namespace

void sync_dir(const std::string& dir) {
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  write_atomic(path, bytes.data(), bytes.size());
}

void write_file_atomic(const std::string& path, const std::vector<char>& bytes) {
  write_atomic(path, bytes.data(), bytes.size());
}

void replace_with_link(const std::string& from,
                       const std::string& to,
                       const std::vector<char>& bytes) {
  const fs::path target(to);
  const fs::path tmp = temporary_for(target);
  ::unlink(tmp.c_str());
  if (::link(from.c_str(), tmp.c_str()) != 0) {
    write_atomic(to, bytes.data(), bytes.size());
    return;
  }
  if (::rename(tmp.c_str(), to.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    io_fail(to, "cannot replace with the new file", err);
  }
  sync_dir(parent_of(target).string());
}

void remove_tree(const std::string& path) {
  nftw(
      path.c_str(),
      [](const char* p, const struct stat*, int, struct FTW*) { return std::remove(p); },
      /*nopenfd=*/16, FTW_DEPTH | FTW_PHYS);
}

bool process_gone(const std::string& pid_text) {
  if (pid_text.empty() || pid_text.size() > 9 ||
      pid_text.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  const auto pid = static_cast<pid_t>(std::stol(pid_text));
  return pid == ::getpid() || (::kill(pid, 0) != 0 && errno == ESRCH);
}

std::string temporary_name_pid(const std::string& name) {
  if (name.rfind(kProbePrefix, 0) == 0) {
    return name.substr(std::strlen(kProbePrefix));
  }
  const size_t tag = name.rfind(kTmpTag);
  if (name.size() > 1 && name[0] == '.' && tag != std::string::npos && tag > 0) {
    return name.substr(tag + std::strlen(kTmpTag));
  }
  return "";
}

void remove_abandoned(const std::string& dir,
                      const std::function<std::string(const std::string& name)>& owner) {
  std::vector<fs::path> stale;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string pid = owner(it->path().filename().string());
    std::error_code type_ec;
    const fs::file_status status = fs::symlink_status(it->path(), type_ec);
    if (!pid.empty() && (fs::is_regular_file(status) || fs::is_directory(status)) &&
        process_gone(pid)) {
      stale.push_back(it->path());
    }
  }
  for (const fs::path& entry : stale) {
    remove_tree(entry.string());
  }
}

std::optional<std::string> writable_dir_problem(const std::string& dir, const std::string& what) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return dir + ": cannot create the " + what + " (" + ec.message() + ")";
  }
  if (!fs::is_directory(dir, ec)) {
    return dir + ": exists and is not a folder";
  }
  const std::string probe = (fs::path(dir) / (kProbePrefix + std::to_string(::getpid()))).string();
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    return dir + ": cannot write in the " + what + " (" + std::strerror(errno) + ")";
  }
  ::close(fd);
  ::unlink(probe.c_str());
  return std::nullopt;
}

void ensure_writable_dir(const std::string& dir, const std::string& what) {
  if (const auto problem = writable_dir_problem(dir, what)) {
    throw IoError(*problem);
  }
}

nlohmann::ordered_json read_json_file(const std::string& path) {
  std::error_code ec;
  const uint64_t size = fs::file_size(path, ec);
  if (ec) {
    throw IoError(path + ": cannot read (" + ec.message() + ")");
  }
  if (size > kMaxJsonBytes) {
    throw FormatError(path + ": " + std::to_string(size) +
                      " bytes is too large for a JSON file here (at most " +
                      std::to_string(kMaxJsonBytes) + ")");
  }
  std::ifstream in(path, std::ios::binary);
  std::string text(static_cast<size_t>(size), '\0');
  if (!in.read(text.data(), static_cast<std::streamsize>(size))) {
    throw IoError(path + ": cannot read " + std::to_string(size) + " bytes");
  }
  // Nesting depth, outside strings, before the (recursive) parser sees it.
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) {
        throw FormatError(path + ": JSON nested deeper than " + std::to_string(kMaxJsonDepth) +
                          " levels (at byte " + std::to_string(i) + ")");
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  try {
    return nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(path + ": not valid JSON (" + e.what() + ")");
  }
}

bool is_plain_relative_path(const std::string& path) {
  if (path.empty() || path.front() == '/') {
    return false;
  }
  size_t start = 0;
  while (true) {
    const size_t slash = path.find('/', start);
    const std::string segment = path.substr(start, slash - start);
    const bool plain = !segment.empty() && segment != "." && segment != ".." &&
                       std::none_of(segment.begin(), segment.end(), [](char c) {
                         const auto u = static_cast<unsigned char>(c);
                         return c == '\\' || u < 0x20 || u == 0x7f;
                       });
    if (!plain) {
      return false;
    }
    if (slash == std::string::npos) {
      return true;
    }
    start = slash + 1;
  }
}

namespace {

/// Opens (creating) DIR/.mnist-train.lock; throws IoError.
int open_lock_file(const std::string& dir) {
  const std::string path = (fs::path(dir) / FolderLock::kFileName).string();
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    io_fail(path, "cannot open the lock file", errno);
  }
  return fd;
}

std::string lock_holder(int fd) {
  char buf[32] = {};
  const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  std::string pid(buf, n > 0 ? static_cast<size_t>(n) : 0);
  while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) {
    pid.pop_back();
  }
  return pid.find_first_not_of("0123456789") == std::string::npos ? pid : "";
}

/// flock(fd, op | LOCK_NB) retried every 10 ms for up to `ms`; errno is
/// left as the last attempt set it.
bool lock_within(int fd, int op, int ms) {
  for (int waited = 0;; waited += 10) {
    if (::flock(fd, op | LOCK_NB) == 0) {
      return true;
    }
    if ((errno != EWOULDBLOCK && errno != EINTR) || waited >= ms) {
      return false;
    }
    ::usleep(10 * 1000);
  }
}

void mark_holder(int fd) {
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) == 0) {
    (void)!::pwrite(fd, pid.data(), pid.size(), 0);  // for messages only
  }
}

}  // namespace

FolderLock FolderLock::wait(const std::string& dir,
                            const std::function<void(const std::string&)>& on_wait) {
  const int fd = open_lock_file(dir);
  if (!lock_within(fd, LOCK_EX, kReaderGraceMs)) {
    if (errno != EWOULDBLOCK) {
      const int err = errno;
      ::close(fd);
      io_fail((fs::path(dir) / kFileName).string(), "cannot lock", err);
    }
    if (on_wait) {
      on_wait(lock_holder(fd));
    }
    while (::flock(fd, LOCK_EX) != 0) {
      if (errno != EINTR) {
        const int err = errno;
        ::close(fd);
        io_fail((fs::path(dir) / kFileName).string(), "cannot lock", err);
      }
    }
  }
  mark_holder(fd);
  return FolderLock(fd);
}

FolderLock FolderLock::take(const std::string& dir, const std::string& what) {
  const int fd = open_lock_file(dir);
  if (!lock_within(fd, LOCK_EX, kReaderGraceMs)) {
    const int err = errno;
    const std::string holder = lock_holder(fd);
    ::close(fd);
    if (err == EWOULDBLOCK) {
      throw IoError(dir + ": in use by another mnist-train" +
                    (holder.empty() ? std::string() : " (pid " + holder + ")") + " as its " + what);
    }
    io_fail((fs::path(dir) / kFileName).string(), "cannot lock", err);
  }
  mark_holder(fd);
  return FolderLock(fd);
}

std::optional<FolderLock> FolderLock::share(const std::string& dir, int timeout_ms) {
  const std::string path = (fs::path(dir) / kFileName).string();
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);  // flock needs no write access
  }
  if (fd < 0) {
    return std::nullopt;
  }
  if (!lock_within(fd, LOCK_SH, timeout_ms)) {
    ::close(fd);
    return std::nullopt;
  }
  return FolderLock(fd);
}

FolderLock::FolderLock(FolderLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }

FolderLock::~FolderLock() {
  if (fd_ >= 0) {
    ::close(fd_);  // releases the flock
  }
}

}  // namespace mnist
