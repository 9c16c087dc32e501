// File safety shared by every writer (models, checkpoints, history.json) and
// by serve: atomic replacement, folder fsync, the sweep of what killed writers
// left behind, the writable-folder probe, bounded JSON reading, and the rule
// for plain relative paths. The crash-safe protocols built on these are in
// docs/design.md ("Saving without torn files").
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mnist {

/// fsyncs the folder `dir`, making a rename inside it durable. Best effort:
/// a folder that cannot be opened is left alone.
void sync_dir(const std::string& dir);

/// Writes `bytes` to `path` through a temporary file in the same folder
/// (".<name>.tmp.<pid>") that is flushed to disk and then renamed over
/// `path`: readers see the old file or the complete new one, never a torn
/// one. Throws IoError naming the file and the cause; the temporary file is
/// removed on failure.
void write_file_atomic(const std::string& path, const std::string& bytes);
void write_file_atomic(const std::string& path, const std::vector<char>& bytes);

/// Replaces `to` with the file `from`, atomically: a hard link to `from`
/// under a temporary name is renamed over `to`. Where the file system has no
/// hard links, `to` is written again from `bytes` (write_file_atomic).
/// Throws IoError.
void replace_with_link(const std::string& from,
                       const std::string& to,
                       const std::vector<char>& bytes);

/// Removes a folder tree, or a file (not std::filesystem::remove_all:
/// PyTorch's pip libtorch.so exports a broken copy of it). Best effort.
void remove_tree(const std::string& path);

/// Whether the decimal process id `pid_text` is this process's or no running
/// process's: a file or folder tagged with it (by a writer killed half-way)
/// is no longer in use. False for anything that is not a process id.
bool process_gone(const std::string& pid_text);

/// The process id tagged on the temporary names of this module
/// (".<name>.tmp.<pid>" of write_file_atomic, ".mnist-train-probe.<pid>" of
/// the writable-folder probe), or "" for any other name.
std::string temporary_name_pid(const std::string& name);

/// Removes each entry of `dir` (a regular file or a folder; never a symlink)
/// for which `owner(name)` returns the id of a process that is gone. `owner`
/// returns "" for names that are not leftovers.
void remove_abandoned(const std::string& dir,
                      const std::function<std::string(const std::string& name)>& owner);

/// Why new files cannot be made in `dir`, after creating it if missing (its
/// parents too): "DIR: cannot create the WHAT (reason)", "DIR: exists and is
/// not a folder", "DIR: cannot write in the WHAT (reason)"; nullopt when a
/// file can be created there. `what` names the folder's use ("model folder",
/// "checkpoint folder").
std::optional<std::string> writable_dir_problem(const std::string& dir, const std::string& what);

/// writable_dir_problem(), thrown as an IoError.
void ensure_writable_dir(const std::string& dir, const std::string& what);

/// One writer per folder: an advisory lock (flock) on DIR/.mnist-train.lock
/// (created if missing, never removed: removing a lock file races with its
/// next user), holding the owner's process id for others' messages. Released
/// when destroyed, or by the kernel when the process dies, however it dies.
/// Readers (serve taking a consistent copy of a model) share it; writers
/// give a reader kReaderGraceMs before they wait aloud or refuse.
class FolderLock {
 public:
  static constexpr const char* kFileName = ".mnist-train.lock";
  static constexpr int kReaderGraceMs = 500;

  /// Blocks until the lock is free. When another process holds it past the
  /// grace, `on_wait(holder_pid)` is called once first (holder_pid may be
  /// ""). Throws IoError when the lock file cannot be made.
  static FolderLock wait(const std::string& dir,
                         const std::function<void(const std::string& holder_pid)>& on_wait = {});

  /// Takes the lock or throws IoError "DIR: in use by another mnist-train
  /// (pid N) as its WHAT".
  static FolderLock take(const std::string& dir, const std::string& what);

  /// A reader's shared lock, which keeps writers out while held: nullopt
  /// when no writer released it within `timeout_ms`, or when the lock file
  /// can neither be opened nor made (a folder this process may not write).
  /// Never throws.
  static std::optional<FolderLock> share(const std::string& dir, int timeout_ms);

  FolderLock(FolderLock&& other) noexcept;
  FolderLock& operator=(FolderLock&& other) = delete;
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;
  ~FolderLock();

 private:
  explicit FolderLock(int fd) : fd_(fd) {}
  int fd_;
};

/// Reads and parses a JSON file with bounds for untrusted input: at most
/// kMaxJsonBytes, nested at most kMaxJsonDepth deep (deeper nesting would
/// exhaust the recursive parser's stack), checked before parsing. Throws
/// IoError if the file cannot be read, FormatError naming the file otherwise.
constexpr uint64_t kMaxJsonBytes = uint64_t{64} << 20;
constexpr int kMaxJsonDepth = 64;
nlohmann::ordered_json read_json_file(const std::string& path);

/// A relative path of plain segments only: not empty, no leading '/', no
/// empty, "." or ".." segment, no backslash, no control character. Such a
/// path cannot leave the folder it is taken relative to (symlinks aside).
bool is_plain_relative_path(const std::string& path);

}  // namespace mnist
