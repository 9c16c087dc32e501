// ModelVersions: consistent copies of the served model folder. A version
// is model.json (its weight paths rewritten to name the version) and the
// weight files it names, held open; a file renamed over later does not
// change what an open descriptor reads, so each version stays whole for as
// long as it is kept.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <deque>
#include <filesystem>
#include <mutex>
#include <random>
#include <thread>

#include "mnist/error.hpp"
#include "mnist/fs_util.hpp"
#include "mnist/serve.hpp"
#include "mnist/tfjs_io.hpp"

namespace fs = std::filesystem;

namespace mnist {

namespace {

constexpr int kLockTimeoutMs = 2000;
constexpr int kUnlockedTries = 5;
constexpr size_t kMaxHeldFiles = 256;

/// What tells one file on disk from its replacement.
struct Stamp {
  dev_t dev = 0;
  ino_t ino = 0;  ///< 0: missing
  off_t size = 0;
  timespec mtime{};
  timespec ctime{};

  bool operator==(const Stamp& o) const {
    return dev == o.dev && ino == o.ino && size == o.size && mtime.tv_sec == o.mtime.tv_sec &&
           mtime.tv_nsec == o.mtime.tv_nsec && ctime.tv_sec == o.ctime.tv_sec &&
           ctime.tv_nsec == o.ctime.tv_nsec;
  }
  bool operator!=(const Stamp& o) const { return !(*this == o); }
};

Stamp stamp_of(const struct stat& st) {
  return Stamp{st.st_dev, st.st_ino, st.st_size, st.st_mtim, st.st_ctim};
}

Stamp stamp_path(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? stamp_of(st) : Stamp{};
}

/// A version and the stamps it was taken at.
struct Taken {
  std::shared_ptr<ModelVersion> version;
  Stamp json;
  std::vector<std::pair<std::string, Stamp>> files;  ///< every accepted path, missing ones too
  bool complete = true;                              ///< every accepted path opened
};

std::string random_nonce() {
  std::random_device device;
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", static_cast<unsigned>(device()));
  return buf;
}

}  // namespace

HeldFile::~HeldFile() { ::close(fd); }

struct ModelVersions::Impl {
  std::string dir;
  size_t keep;
  std::string nonce = random_nonce();
  uint64_t counter = 0;
  mutable std::mutex mutex;
  std::deque<Taken> kept;  ///< oldest first

  bool unchanged(const Taken& t) const {
    if (stamp_path((fs::path(dir) / kModelJsonFile).string()) != t.json) {
      return false;
    }
    for (const auto& [path, stamp] : t.files) {
      if (stamp_path((fs::path(dir) / path).string()) != stamp) {
        return false;
      }
    }
    return true;
  }

  /// Reads model.json and opens what it names. nullopt when model.json
  /// cannot be read or parsed; `version` null when it changed meanwhile.
  std::optional<Taken> take() {
    const std::string json_path = (fs::path(dir) / kModelJsonFile).string();
    Taken t;
    t.json = stamp_path(json_path);
    nlohmann::ordered_json doc;
    try {
      doc = read_json_file(json_path);
    } catch (const Error&) {
      return std::nullopt;
    }
    if (stamp_path(json_path) != t.json) {
      return t;  // replaced while being read
    }
    auto version = std::make_shared<ModelVersion>();
    version->id = nonce + "-" + std::to_string(++counter);
    const auto manifest = doc.find("weightsManifest");
    if (doc.is_object() && manifest != doc.end() && manifest->is_array()) {
      for (auto& group : *manifest) {
        const auto paths = group.is_object() ? group.find("paths") : group.end();
        if (!group.is_object() || paths == group.end() || !paths->is_array()) {
          continue;
        }
        for (auto& p : *paths) {
          if (!p.is_string()) {
            continue;
          }
          const WeightPath checked = check_weight_path(p.get<std::string>());
          if (!checked.problem.empty()) {
            continue;  // left as it is: its URL is refused (a 404)
          }
          p = "v/" + version->id + "/" + checked.path;
          if (version->files.count(checked.path) != 0) {
            continue;
          }
          const std::string file = (fs::path(dir) / checked.path).string();
          std::shared_ptr<const HeldFile> held;
          if (file_inside(file, dir)) {
            const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
            struct stat st {};
            if (fd >= 0 && ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
              held = std::make_shared<const HeldFile>(fd, static_cast<uint64_t>(st.st_size));
              t.files.emplace_back(checked.path, stamp_of(st));
            } else if (fd >= 0) {
              ::close(fd);
            }
          }
          if (held) {
            version->files.emplace(checked.path, std::move(held));
          } else {
            t.files.emplace_back(checked.path, Stamp{});
            t.complete = false;
          }
        }
      }
    }
    version->model_json = doc.dump();
    t.version = std::move(version);
    return t;
  }

  void remember(Taken t) {
    kept.push_back(std::move(t));
    size_t held = 0;
    for (const Taken& k : kept) {
      held += k.version->files.size();
    }
    while (kept.size() > 1 && (kept.size() > keep || held > kMaxHeldFiles)) {
      held -= kept.front().version->files.size();
      kept.pop_front();  // downloads under way keep their files open
    }
  }
};

ModelVersions::ModelVersions(std::string model_dir, size_t keep) : impl_(std::make_unique<Impl>()) {
  impl_->dir = std::move(model_dir);
  impl_->keep = std::max<size_t>(keep, 1);
}

ModelVersions::~ModelVersions() = default;

std::shared_ptr<const ModelVersion> ModelVersions::current() {
  Impl& m = *impl_;
  const std::lock_guard<std::mutex> guard(m.mutex);
  if (!m.kept.empty() && m.unchanged(m.kept.back())) {
    return m.kept.back().version;
  }
  if (stamp_path((fs::path(m.dir) / kModelJsonFile).string()).ino == 0) {
    return nullptr;  // no model (and no lock file made in a folder that is not one)
  }
  // No mnist-train save is half done while the shared lock is held.
  if (const auto lock = FolderLock::share(m.dir, kLockTimeoutMs)) {
    auto t = m.take();
    if (!t) {
      return nullptr;
    }
    if (t->version) {
      m.remember(std::move(*t));
      return m.kept.back().version;
    }
  }
  // Without the lock: until model.json stays the same across the copy and
  // every file it names is there (a save of ours renames its weights in
  // between two model.json writes).
  std::optional<Taken> last;
  for (int attempt = 0; attempt < kUnlockedTries; ++attempt) {
    auto t = m.take();
    if (!t) {
      return nullptr;
    }
    if (t->version) {
      const bool whole = t->complete;
      last = std::move(t);
      if (whole) {
        break;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!last) {
    return m.kept.empty() ? nullptr : m.kept.back().version;
  }
  m.remember(std::move(*last));
  return m.kept.back().version;
}

std::shared_ptr<const ModelVersion> ModelVersions::find(const std::string& id) const {
  const std::lock_guard<std::mutex> guard(impl_->mutex);
  for (const Taken& t : impl_->kept) {
    if (t.version->id == id) {
      return t.version;
    }
  }
  return nullptr;
}

}  // namespace mnist
