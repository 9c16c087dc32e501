// Folder datasets: Keras's index and split (docs/data.md), and the decoded
// images' cache (a file of uint8 records, written whole under a temporary
// name and renamed, then memory-mapped).
#include "mnist/image_folder.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <utility>

#include <spdlog/fmt/fmt.h>

#include <ATen/ATen.h>

#include "mnist/error.hpp"
#include "mnist/fs_util.hpp"

namespace fs = std::filesystem;

namespace mnist {

namespace {

constexpr const char* kCacheMagic = "MNTIMGC1";
constexpr uint64_t kCacheDataOffset = 4096;
constexpr uint64_t kMaxCacheJsonBytes = uint64_t{256} << 20;
constexpr size_t kBadShown = 20;

bool hidden(const std::string& name) { return !name.empty() && name[0] == '.'; }

/// Whether `s` is well-formed UTF-8 (no overlong forms, surrogates or
/// code points above U+10FFFF): what JSON and the page can carry.
bool valid_utf8(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    const unsigned c = *p;
    int more = 0;
    uint32_t cp = 0;
    uint32_t least = 0;
    if (c < 0x80) {
      ++p;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      more = 1, cp = c & 0x1F, least = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      more = 2, cp = c & 0x0F, least = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      more = 3, cp = c & 0x07, least = 0x10000;
    } else {
      return false;
    }
    if (end - p <= more) {
      return false;
    }
    for (int i = 1; i <= more; ++i) {
      if ((p[i] & 0xC0) != 0x80) {
        return false;
      }
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    if (cp < least || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    p += more + 1;
  }
  return true;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

/// A folder's entries: sorted names of its folders (not links to folders
/// unless `follow`), and of everything else.
struct Listing {
  std::vector<std::string> folders;
  std::vector<std::string> files;
  std::vector<std::string> linked_folders;
};

Listing list_folder(const fs::path& dir) {
  Listing out;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) {
    throw DataError(dir.string() + ": cannot read the folder: " + ec.message());
  }
  for (const fs::directory_iterator end; it != end; it.increment(ec)) {
    if (ec) {
      throw DataError(dir.string() + ": cannot read the folder: " + ec.message());
    }
    const std::string name = it->path().filename().string();
    std::error_code e2;
    const bool link = it->is_symlink(e2);
    const bool folder = it->is_directory(e2);  // follows links
    if (folder && !link) {
      out.folders.push_back(name);
    } else if (folder) {
      out.linked_folders.push_back(name);
    } else {
      out.files.push_back(name);
    }
  }
  for (auto* v : {&out.folders, &out.files, &out.linked_folders}) {
    std::sort(v->begin(), v->end());
  }
  return out;
}

/// The class folders of `dir` (not hidden; links to folders count, as
/// Keras's isdir follows them), sorted.
std::vector<std::string> class_folders(const fs::path& dir) {
  const Listing l = list_folder(dir);
  std::vector<std::string> names;
  std::merge(l.folders.begin(), l.folders.end(), l.linked_folders.begin(), l.linked_folders.end(),
             std::back_inserter(names));
  names.erase(std::remove_if(names.begin(), names.end(), hidden), names.end());
  for (const auto& n : names) {
    if (!valid_utf8(n)) {
      throw DataError((dir / n).string() +
                      ": the class folder's name is not valid UTF-8, and class names go into "
                      "model.json: rename the folder");
    }
  }
  return names;
}

/// Every folder under `root` (itself included) that the walk visits: not
/// hidden, not reached through a link; relative paths.
void walk_folders(const fs::path& base, const std::string& rel, std::vector<std::string>& out) {
  out.push_back(rel);
  for (const auto& f : list_folder(base / rel).folders) {
    if (!hidden(f)) {
      walk_folders(base, rel + "/" + f, out);
    }
  }
}

/// The image files of class folder `prefix/name` of `base`, in Keras's walk
/// order, labelled `label`.
void index_class(const fs::path& base,
                 const std::string& rel,
                 int64_t label,
                 FolderIndex& index,
                 std::vector<ImageFile>& out) {
  std::vector<std::string> folders;
  walk_folders(base, rel, folders);
  std::sort(folders.begin(), folders.end());  // Keras sorts the walk by its roots' paths
  for (const auto& folder : folders) {
    for (const auto& name : list_folder(base / folder).files) {
      if (hidden(name)) {
        ++index.hidden;
        continue;
      }
      // Keras's allow-list; .bmp and .gif are indexed as Keras indexes
      // them, and reported (this tool decodes PNG and JPEG).
      const ImageFileKind kind = image_file_kind(name);
      if (kind != ImageFileKind::kDecoded && kind != ImageFileKind::kUndecoded) {
        ++index.other_files;
        continue;
      }
      ImageFile f;
      f.path = folder + "/" + name;
      f.label = label;
      struct stat st {};
      if (::stat((base / f.path).c_str(), &st) != 0) {
        f.problem = std::string("cannot be read: ") + std::strerror(errno);
      } else if (!S_ISREG(st.st_mode)) {
        f.problem = "is not a regular file";
      } else {
        f.bytes = st.st_size;
        f.mtime_ns = int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
        if (!valid_utf8(name)) {
          f.problem = "its name is not valid UTF-8: rename it";
        } else if (kind == ImageFileKind::kUndecoded) {
          f.problem =
              "BMP and GIF files are not decoded by mnist-train (PNG and JPEG are): "
              "convert it";
        }
      }
      out.push_back(std::move(f));
    }
  }
}

// --- the cache ---

/// FNV-1a, 64 bits, from `basis`.
struct Fnv {
  uint64_t h;
  void add(const std::string& s) {
    for (const unsigned char c : s) {
      h = (h ^ c) * 0x100000001b3ULL;
    }
    h = (h ^ 0xff) * 0x100000001b3ULL;  // a separator no string holds
  }
};

struct CacheKey {
  std::string prefix;  ///< the folder and the settings: older caches of them are removed
  std::string key;     ///< also the files
};

std::string spec_text(const ImageSpec& spec, bool color_auto) {
  return fmt::format("{}x{} {} {} crop={}", spec.height, spec.width,
                     color_auto ? "auto" : color_mode_name(spec.color_mode),
                     interpolation_name(spec.interpolation), spec.crop_to_aspect_ratio ? 1 : 0);
}

CacheKey cache_key(const std::string& dir,
                   const std::vector<ImageFile>& files,
                   const ImageSpec& spec,
                   bool color_auto) {
  std::error_code ec;
  const std::string where = fs::weakly_canonical(fs::absolute(dir, ec), ec).string();
  Fnv a{0xcbf29ce484222325ULL};
  a.add("mnist-train image cache 1");
  a.add(where);
  a.add(spec_text(spec, color_auto));
  const uint64_t prefix = a.h;
  Fnv b{prefix ^ 0x9e3779b97f4a7c15ULL};
  Fnv c{prefix};
  for (const auto& f : files) {
    for (Fnv* h : {&b, &c}) {
      h->add(f.path);
      h->add(std::to_string(f.bytes) + " " + std::to_string(f.mtime_ns) + " " +
             std::to_string(f.label) + " " + f.problem);
    }
  }
  return {fmt::format("{:016x}", prefix), fmt::format("{:016x}{:016x}", b.h, c.h)};
}

/// A read-only or writable mapping of a whole file, unmapped when the last
/// tensor viewing it goes.
struct Mapping {
  void* base = MAP_FAILED;
  size_t size = 0;
  ~Mapping() {
    if (base != MAP_FAILED) {
      ::munmap(base, size);
    }
  }
};

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) {
      ::close(fd);
    }
  }
};

uint64_t read_u64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) {
    v = (v << 8) | p[i];
  }
  return v;
}

void put_u64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) {
    p[i] = static_cast<uint8_t>(v >> (8 * i));
  }
}

/// The cache file at `path` if it is a complete one of `key` for `count`
/// files; nullopt when it is missing or not (a leftover of another version,
/// cut short, another key).
std::optional<DecodedImages> open_cache(const std::string& path,
                                        const std::string& key,
                                        size_t count) {
  Fd fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (fd.fd < 0) {
    return std::nullopt;
  }
  struct stat st {};
  uint8_t head[32];
  if (::fstat(fd.fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 4096 ||
      ::pread(fd.fd, head, sizeof head, 0) != static_cast<ssize_t>(sizeof head) ||
      std::memcmp(head, kCacheMagic, 8) != 0) {
    return std::nullopt;
  }
  const uint64_t data_offset = read_u64(head + 8);
  const uint64_t json_offset = read_u64(head + 16);
  const uint64_t json_len = read_u64(head + 24);
  const auto size = static_cast<uint64_t>(st.st_size);
  if (data_offset != kCacheDataOffset || json_len > kMaxCacheJsonBytes ||
      json_offset < data_offset || json_offset > size || size - json_offset != json_len) {
    return std::nullopt;
  }
  std::string text(json_len, '\0');
  if (::pread(fd.fd, text.data(), json_len, static_cast<off_t>(json_offset)) !=
      static_cast<ssize_t>(json_len)) {
    return std::nullopt;
  }
  DecodedImages out;
  int64_t h = 0;
  int64_t w = 0;
  int64_t c = 0;
  try {
    const auto doc = nlohmann::json::parse(text);
    if (doc.at("key").get<std::string>() != key ||
        doc.at("count").get<uint64_t>() != static_cast<uint64_t>(count)) {
      return std::nullopt;
    }
    h = doc.at("height").get<int64_t>();
    w = doc.at("width").get<int64_t>();
    c = doc.at("channels").get<int64_t>();
    const auto mode = parse_color_mode(doc.at("color_mode").get<std::string>());
    const auto interpolation = parse_interpolation(doc.at("interpolation").get<std::string>());
    if (h < 1 || w < 1 || !mode || !interpolation || channels_of(*mode) != c ||
        h * w > kMaxImagePixels) {
      return std::nullopt;
    }
    out.spec = {h, w, *mode, *interpolation, doc.at("crop_to_aspect_ratio").get<bool>()};
    out.ok.assign(count, true);
    for (const auto& b : doc.at("bad")) {
      const auto i = b.at(0).get<uint64_t>();
      if (i >= count) {
        return std::nullopt;
      }
      out.ok[i] = false;
      out.bad.push_back({"", b.at(1).get<std::string>()});
      out.bad.back().path = std::to_string(i);  // filled in by the caller
    }
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
  const uint64_t record = static_cast<uint64_t>(h * w * c);
  if (json_offset - data_offset != record * count) {
    return std::nullopt;
  }
  auto map = std::make_shared<Mapping>();
  map->size = size;
  map->base = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd.fd, 0);
  if (map->base == MAP_FAILED) {
    return std::nullopt;
  }
  auto* data = static_cast<uint8_t*>(map->base) + data_offset;
  out.images = at::from_blob(
                   data, {static_cast<int64_t>(count), h, w, c}, [map](void*) {},
                   at::TensorOptions(at::kByte))
                   .permute({0, 3, 1, 2});
  out.from_cache = true;
  out.cache_path = path;
  return out;
}

bool stopped(const std::atomic<bool>* stop) { return stop != nullptr && stop->load(); }

/// The size and colour of the images, from their headers, for what the
/// spec leaves open; files whose header is bad are marked in `problems`.
/// Returns early (the spec unresolved) when `stop` is set.
void resolve_spec(const std::string& dir,
                  const std::vector<ImageFile>& files,
                  ImageSpec& spec,
                  bool color_auto,
                  int threads,
                  const std::atomic<bool>* stop,
                  std::vector<std::string>& problems) {
  std::vector<ImageHeader> headers(files.size());
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i; (i = next++) < files.size();) {
      if (!problems[i].empty()) {
        continue;
      }
      if (stopped(stop)) {
        return;
      }
      try {
        headers[i] =
            read_image_file_header((fs::path(dir) / files[i].path).string(), files[i].path);
      } catch (const DataError& e) {
        problems[i] = e.what();
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) {
    pool.emplace_back(work);
  }
  work();
  for (auto& t : pool) {
    t.join();
  }
  if (stopped(stop)) {
    return;
  }
  std::map<std::pair<int64_t, int64_t>, std::vector<size_t>> sizes;
  bool colour = false;
  for (size_t i = 0; i < files.size(); ++i) {
    if (problems[i].empty()) {
      sizes[{headers[i].height, headers[i].width}].push_back(i);
      colour = colour || headers[i].channels > 1;
    }
  }
  if (color_auto) {
    spec.color_mode = colour ? ColorMode::kRgb : ColorMode::kGrayscale;
  }
  if (spec.height == 0 || spec.width == 0) {
    if (sizes.size() > 1) {
      std::string seen;
      size_t shown = 0;
      for (const auto& [hw, which] : sizes) {
        if (shown++ == 3) {
          seen += ", ...";
          break;
        }
        seen += fmt::format("{}{}x{} ({} files, e.g. {})", seen.empty() ? "" : ", ", hw.first,
                            hw.second, which.size(), files[which.front()].path);
      }
      throw DataError(fmt::format("{}: the images are not all of one size ({} sizes: {}); give the "
                                  "size to resize them to",
                                  dir, sizes.size(), seen),
                      Remedy::kImageSize);
    }
    if (!sizes.empty()) {
      spec.height = sizes.begin()->first.first;
      spec.width = sizes.begin()->first.second;
    }
  }
}

}  // namespace

ImageFileKind image_file_kind(const std::string& name) {
  const std::string l = lower(name);
  if (ends_with(l, ".png") || ends_with(l, ".jpg") || ends_with(l, ".jpeg")) {
    return ImageFileKind::kDecoded;
  }
  if (ends_with(l, ".bmp") || ends_with(l, ".gif")) {
    return ImageFileKind::kUndecoded;
  }
  if (ends_with(l, ".pgm")) {
    return ImageFileKind::kPgm;
  }
  return ImageFileKind::kOther;
}

std::string file_count_text(size_t n) {
  return fmt::format("{} image file{}", n, n == 1 ? "" : "s");
}

bool is_image_folder(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec) || fs::exists(idx_path(dir, kTrainImagesFile), ec)) {
    return false;
  }
  try {
    return !class_folders(dir).empty();
  } catch (const DataError&) {
    return true;  // index_image_folder says what is wrong with it
  }
}

FolderIndex index_image_folder(const std::string& dir) {
  FolderIndex index;
  index.dir = dir;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw DataError(dir + ": data folder not found");
  }
  const std::vector<std::string> top = class_folders(dir);
  const auto has = [&](const char* name) {
    return std::find(top.begin(), top.end(), name) != top.end();
  };
  index.subsets = has("train") && std::all_of(top.begin(), top.end(), [](const std::string& n) {
                    return n == "train" || n == "validation" || n == "val" || n == "test";
                  });
  if (index.subsets && has("validation") && has("val")) {
    throw DataError(dir + ": it has both a validation/ and a val/ subfolder: keep one");
  }
  const fs::path base(dir);
  const std::string train_prefix = index.subsets ? "train/" : "";
  index.class_names = class_folders(base / train_prefix);
  if (index.class_names.empty()) {
    throw DataError(dir + (index.subsets ? "/train" : "") +
                    ": no class subfolders (expected one folder of images per class, e.g. " + dir +
                    "/cats/1.jpg and " + dir + "/dogs/1.jpg)");
  }
  if (index.class_names.size() < 2) {
    throw DataError(dir + (index.subsets ? "/train" : "") + ": it holds one class folder (" +
                    index.class_names[0] +
                    ") only; a classifier needs at least two classes, one folder each");
  }
  for (size_t c = 0; c < index.class_names.size(); ++c) {
    const size_t before = index.train.size();
    index_class(base, train_prefix + index.class_names[c], static_cast<int64_t>(c), index,
                index.train);
    if (index.train.size() == before) {
      throw DataError((base / (train_prefix + index.class_names[c])).string() +
                      ": the class folder holds no image files (.png, .jpg, .jpeg): add some, "
                      "or remove the folder");
    }
  }
  if (index.subsets) {
    index.validation_folder = has("validation") ? "validation" : has("val") ? "val" : "";
    for (const auto& [subset, out] :
         {std::pair{index.validation_folder, &index.validation},
          std::pair{std::string(has("test") ? "test" : ""), &index.test}}) {
      if (subset.empty()) {
        continue;
      }
      for (const auto& name : class_folders(base / subset)) {
        const auto it = std::find(index.class_names.begin(), index.class_names.end(), name);
        if (it == index.class_names.end()) {
          throw DataError((base / subset / name).string() +
                          ": a class that train/ does not have (its classes: " +
                          fmt::format("{}", fmt::join(index.class_names, ", ")) + ")");
        }
        index_class(base, subset + "/" + name, it - index.class_names.begin(), index, *out);
      }
    }
  }
  return index;
}

std::vector<int64_t> numpy_shuffle_order(int64_t n, uint32_t seed) {
  std::vector<int64_t> order(static_cast<size_t>(std::max<int64_t>(n, 0)));
  for (size_t i = 0; i < order.size(); ++i) {
    order[i] = static_cast<int64_t>(i);
  }
  std::mt19937 gen(seed);  // init_genrand, as numpy's legacy seeding
  for (int64_t i = n - 1; i >= 1; --i) {
    auto mask = static_cast<uint64_t>(i);
    for (int s = 1; s <= 32; s *= 2) {
      mask |= mask >> s;
    }
    uint64_t j = 0;
    do {
      j = static_cast<uint64_t>(gen()) & mask;
    } while (j > static_cast<uint64_t>(i));
    std::swap(order[static_cast<size_t>(i)], order[j]);
  }
  return order;
}

FolderSplit split_image_folder(const FolderIndex& index,
                               double validation_split,
                               double test_split,
                               uint64_t seed) {
  FolderSplit out;
  const std::vector<ImageFile>& all = index.train;
  const auto n = static_cast<int64_t>(all.size());
  std::vector<ImageFile> shuffled;
  shuffled.reserve(all.size());
  for (const int64_t i : numpy_shuffle_order(n, static_cast<uint32_t>(seed & 0xffffffffULL))) {
    shuffled.push_back(all[static_cast<size_t>(i)]);
  }
  const bool cut_validation = index.validation_folder.empty();
  const bool cut_test = index.test.empty();
  // int(fraction * n), as Python's int() truncates.
  const auto part = [n](double fraction) {
    return static_cast<int64_t>(fraction * static_cast<double>(n));
  };
  const int64_t n_val = cut_validation ? part(validation_split) : 0;
  const int64_t n_test = cut_test ? part(test_split) : 0;
  const int64_t n_train = std::max<int64_t>(n - n_val - n_test, 0);
  out.train.assign(shuffled.begin(), shuffled.begin() + n_train);
  out.test.assign(shuffled.begin() + n_train, shuffled.begin() + n_train + n_test);
  out.validation.assign(shuffled.begin() + n_train + n_test, shuffled.end());
  if (!cut_validation) {
    out.validation = index.validation;
  }
  if (!cut_test) {
    out.test = index.test;
  }
  return out;
}

std::string default_cache_dir() {
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && xdg[0] == '/') {
    return (fs::path(xdg) / "mnist-train" / "images").string();
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && home[0] != '\0') {
    return (fs::path(home) / ".cache" / "mnist-train" / "images").string();
  }
  return "";
}

DecodedImages decode_image_files(const std::string& dir,
                                 const std::vector<ImageFile>& files,
                                 ImageSpec spec,
                                 bool color_auto,
                                 const DecodeOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  const auto seconds = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  const int threads = options.threads > 0
                          ? options.threads
                          : static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
  const std::string cache_dir = options.cache_dir.empty() ? default_cache_dir() : options.cache_dir;
  const CacheKey key = cache_key(dir, files, spec, color_auto);
  const std::string cache_path =
      cache_dir.empty() ? ""
                        : (fs::path(cache_dir) / (key.prefix + "-" + key.key + ".u8")).string();

  const auto fill_paths = [&](DecodedImages& d) {
    size_t b = 0;
    for (size_t i = 0; i < files.size(); ++i) {
      if (!d.ok[i]) {
        d.bad.at(b++).path = files[i].path;
      }
    }
  };
  if (!cache_path.empty()) {
    if (auto cached = open_cache(cache_path, key.key, files.size())) {
      fill_paths(*cached);
      cached->seconds = seconds();
      return std::move(*cached);
    }
  }

  std::vector<std::string> problems(files.size());
  for (size_t i = 0; i < files.size(); ++i) {
    problems[i] = files[i].problem;
  }
  if (spec.height == 0 || spec.width == 0 || color_auto) {
    resolve_spec(dir, files, spec, color_auto, threads, options.stop, problems);
    if (stopped(options.stop)) {
      throw Interrupted(dir + ": stopped while reading its images' headers; nothing was decoded");
    }
    if (spec.height == 0 || spec.width == 0) {
      throw DataError(dir + ": none of its " + file_count_text(files.size()) +
                      " can be read, so there is no image size to take");
    }
  }
  const int64_t c = channels_of(spec.color_mode);
  const auto record = static_cast<uint64_t>(spec.height * spec.width * c);
  const uint64_t data_bytes = record * files.size();

  DecodedImages out;
  out.spec = spec;
  // The records: written into a new cache file when one can be made (and
  // mapped once it is complete), else held in memory.
  Fd fd;
  std::string tmp;
  uint8_t* data = nullptr;
  at::Tensor memory;
  if (!cache_path.empty()) {
    std::error_code ec;
    fs::create_directories(cache_dir, ec);
    // What a run killed while decoding left behind.
    remove_abandoned(cache_dir, temporary_name_pid);
    tmp = (fs::path(cache_dir) / fmt::format(".{}.tmp.{}", key.prefix, ::getpid())).string();
    fd.fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    const uint64_t total = kCacheDataOffset + data_bytes;
    // The space is taken now: a full disk is found before any decoding.
    const int rc = fd.fd < 0 ? errno : ::posix_fallocate(fd.fd, 0, static_cast<off_t>(total));
    if (rc != 0) {
      out.cache_problem = fmt::format(
          "{}: cannot write the image cache there ({}); the images "
          "are held in memory",
          cache_dir, std::strerror(rc));
      if (fd.fd >= 0) {
        ::unlink(tmp.c_str());
      }
      tmp.clear();
    }
  } else {
    out.cache_problem = "no cache folder ($HOME is not set); the images are held in memory";
  }
  if (tmp.empty()) {
    memory = at::zeros({static_cast<int64_t>(files.size()), spec.height, spec.width, c}, at::kByte);
    data = memory.data_ptr<uint8_t>();
  }
  struct TmpGuard {
    std::string& path;
    ~TmpGuard() {
      if (!path.empty()) {
        ::unlink(path.c_str());
      }
    }
  } guard{tmp};

  // Threads take blocks of consecutive records (about 1 MB). Into a cache
  // file, a block is decoded into the thread's buffer and written with one
  // pwrite: stores into the file's mapping would fault every page in,
  // zeroing it first, which cost more than the resize. The written blocks
  // are handed to the kernel's writeback 32 MB at a time while the decoding
  // goes on (the thread whose block passes a chunk's end starts the chunk
  // before that one, all written unless a thread is a whole chunk behind:
  // then those pages are written twice), so the fsync at the end has little
  // left to wait for, and the dirty pages of a cache larger than the memory
  // never pile up: a memory limit counts them, and only written pages can
  // be dropped.
  const size_t n = files.size();
  const size_t block = static_cast<size_t>(std::max<uint64_t>(1, (uint64_t{1} << 20) / record));
  const uint64_t chunk = uint64_t{32} << 20;
  std::atomic<size_t> next_block{0};
  std::atomic<int64_t> done{0};
  std::atomic<int> running{threads};
  std::atomic<int> write_error{0};
  auto work = [&] {
    std::vector<uint8_t> bytes;  // this thread's file buffer, reused
    std::vector<uint8_t> buffer(tmp.empty() ? 0 : static_cast<size_t>(record) * block);
    for (size_t b;
         !stopped(options.stop) && write_error.load() == 0 && (b = next_block++) * block < n;) {
      const size_t first = b * block;
      const size_t last = std::min(n, first + block);
      uint8_t* base = tmp.empty() ? data + record * first : buffer.data();
      size_t i = first;
      for (; i < last && !stopped(options.stop); ++i, ++done) {
        uint8_t* to = base + record * (i - first);
        if (!problems[i].empty()) {
          std::memset(to, 0, record);
          continue;
        }
        try {
          read_image_file((fs::path(dir) / files[i].path).string(), bytes);
          decode_for_dataset(bytes.data(), bytes.size(), files[i].path, spec, to);
        } catch (const DataError& e) {
          problems[i] = e.what();
          std::memset(to, 0, record);
        }
      }
      if (tmp.empty() || i < last) {
        continue;  // in memory, or stopped: nothing to write
      }
      const uint64_t begin = kCacheDataOffset + record * first;
      const uint64_t end = kCacheDataOffset + record * last;
      for (uint64_t at = begin; at < end;) {
        const ssize_t w =
            ::pwrite(fd.fd, buffer.data() + (at - begin), end - at, static_cast<off_t>(at));
        if (w < 0 && errno == EINTR) {
          continue;
        }
        if (w <= 0) {
          write_error = w < 0 ? errno : EIO;
          break;
        }
        at += static_cast<uint64_t>(w);
      }
      if (end / chunk != begin / chunk && end / chunk >= 2) {
        ::sync_file_range(fd.fd, static_cast<off_t>((end / chunk - 2) * chunk),
                          static_cast<off_t>(chunk), SYNC_FILE_RANGE_WRITE);
      }
    }
    --running;
  };
  {
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back(work);
    }
    // Until every worker is done: all files, or a stop (each checks it
    // before its next file, so a stop takes one file's time per thread).
    const auto total = static_cast<int64_t>(files.size());
    while (running.load() > 0) {
      if (options.on_progress) {
        options.on_progress({done.load(), total, seconds()});
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    for (auto& t : pool) {
      t.join();
    }
    if (write_error.load() != 0) {
      // The space was taken (posix_fallocate): the device failed.
      throw IoError(fmt::format("{}: cannot write the image cache: {}", tmp,
                                std::strerror(write_error.load())));
    }
    if (stopped(options.stop)) {
      // The temporary cache file goes with the guard.
      throw Interrupted(
          fmt::format("{}: stopped while decoding its images ({} of {} done); "
                      "nothing was cached",
                      dir, done.load(), total));
    }
    if (options.on_progress) {
      options.on_progress({total, total, seconds()});
    }
  }
  out.ok.assign(files.size(), true);
  nlohmann::json bad = nlohmann::json::array();
  for (size_t i = 0; i < files.size(); ++i) {
    if (!problems[i].empty()) {
      // The decoder's messages start with the file's path.
      std::string reason = problems[i];
      const std::string head = files[i].path + ": ";
      if (reason.compare(0, head.size(), head) == 0) {
        reason = reason.substr(head.size());
      }
      out.ok[i] = false;
      out.bad.push_back({files[i].path, reason});
      bad.push_back({i, reason});
    }
  }
  if (memory.defined()) {
    out.images = memory.permute({0, 3, 1, 2});
    out.seconds = seconds();
    return out;
  }
  // Finish the cache file: the settings and the bad records after the
  // pixels, the header, everything on the disk, then rename it into place
  // and map it.
  const nlohmann::json doc = {{"key", key.key},
                              {"count", files.size()},
                              {"height", spec.height},
                              {"width", spec.width},
                              {"channels", c},
                              {"color_mode", color_mode_name(spec.color_mode)},
                              {"interpolation", interpolation_name(spec.interpolation)},
                              {"crop_to_aspect_ratio", spec.crop_to_aspect_ratio},
                              {"bad", bad}};
  const std::string text = doc.dump();
  uint8_t head[32] = {};
  std::memcpy(head, kCacheMagic, 8);
  put_u64(head + 8, kCacheDataOffset);
  put_u64(head + 16, kCacheDataOffset + data_bytes);
  put_u64(head + 24, text.size());
  bool written = ::pwrite(fd.fd, head, sizeof head, 0) == static_cast<ssize_t>(sizeof head) &&
                 ::pwrite(fd.fd, text.data(), text.size(),
                          static_cast<off_t>(kCacheDataOffset + data_bytes)) ==
                     static_cast<ssize_t>(text.size()) &&
                 ::fsync(fd.fd) == 0;
  if (written) {
    // Older caches of this folder and settings (other files) go.
    std::error_code ec;
    for (fs::directory_iterator it(cache_dir, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (name.rfind(key.prefix + "-", 0) == 0 && name.size() > 4 && ends_with(name, ".u8")) {
        fs::remove(it->path(), ec);
      }
    }
    written = ::rename(tmp.c_str(), cache_path.c_str()) == 0;
  }
  if (!written) {
    out.cache_problem = fmt::format(
        "{}: cannot write the image cache there ({}); the images are "
        "held in memory",
        cache_dir, std::strerror(errno));
    // The mapping made below stays valid after the file's name goes.
  } else {
    tmp.clear();
    out.cache_path = cache_path;
    try {
      sync_dir(cache_dir);
    } catch (const IoError&) {
      // The cache is rebuilt if a crash loses its name.
    }
  }
  auto map = std::make_shared<Mapping>();
  const uint64_t total = kCacheDataOffset + data_bytes + text.size();
  map->base = ::mmap(nullptr, total, PROT_READ, MAP_SHARED, fd.fd, 0);
  if (map->base == MAP_FAILED) {
    throw IoError(fmt::format("{}: cannot map the image cache: {}",
                              out.cache_path.empty() ? tmp : out.cache_path, std::strerror(errno)));
  }
  map->size = total;
  data = static_cast<uint8_t*>(map->base) + kCacheDataOffset;
  out.images = at::from_blob(
                   data, {static_cast<int64_t>(files.size()), spec.height, spec.width, c},
                   [map](void*) {}, at::TensorOptions(at::kByte))
                   .permute({0, 3, 1, 2});
  out.seconds = seconds();
  return out;
}

Dataset folder_dataset(const DecodedImages& decoded,
                       const std::vector<int64_t>& rows,
                       const std::vector<int64_t>& labels) {
  const auto n = static_cast<int64_t>(rows.size());
  return {decoded.images, at::tensor(labels, at::kLong).reshape({n}),
          at::tensor(rows, at::kLong).reshape({n})};
}

std::string bad_images_text(const std::vector<BadImage>& bad) {
  std::string out;
  for (size_t i = 0; i < bad.size() && i < kBadShown; ++i) {
    out += "\n  " + bad[i].path + ": " + bad[i].reason;
  }
  if (bad.size() > kBadShown) {
    out += fmt::format("\n  ... and {} more", bad.size() - kBadShown);
  }
  return out;
}

std::optional<ImageSpec> model_image_spec(const Model& model, const std::string& origin) {
  const Shape& input = model->spec().input_shape;
  const nlohmann::ordered_json& metadata = model->spec().metadata;
  const bool from_folder = metadata.is_object() && metadata.contains("imageSize");
  if (!from_folder && input == Shape{28, 28, 1}) {
    return std::nullopt;
  }
  if (input.size() != 3 || (input[2] != 1 && input[2] != 3)) {
    throw ConfigError(origin + ": the model's input is " + shape_text(input) +
                      ", not an image of 1 or 3 channels [height, width, channels]");
  }
  ImageSpec spec;
  spec.height = input[0];
  spec.width = input[1];
  spec.color_mode = input[2] == 3 ? ColorMode::kRgb : ColorMode::kGrayscale;
  if (metadata.is_object()) {
    if (const auto it = metadata.find("interpolation"); it != metadata.end() && it->is_string()) {
      spec.interpolation = parse_interpolation(it->get<std::string>()).value_or(spec.interpolation);
    }
    if (const auto it = metadata.find("cropToAspectRatio");
        it != metadata.end() && it->is_boolean()) {
      spec.crop_to_aspect_ratio = it->get<bool>();
    }
  }
  return spec;
}

namespace {

/// The test files of `index` (its test/ subset, else every file) and each
/// one's class in `class_names`; a folder of a class the model does not
/// know is a DataError naming it.
std::pair<std::vector<ImageFile>, std::vector<int64_t>> model_test_files(
    const FolderIndex& index, const std::vector<std::string>& class_names) {
  std::vector<ImageFile> files = index.test;
  if (files.empty()) {
    files = index.train;
    files.insert(files.end(), index.validation.begin(), index.validation.end());
  }
  // The folder's classes by the model's names.
  std::vector<int64_t> label_of(index.class_names.size(), -1);
  for (size_t c = 0; c < index.class_names.size(); ++c) {
    const auto it = std::find(class_names.begin(), class_names.end(), index.class_names[c]);
    if (it != class_names.end()) {
      label_of[c] = it - class_names.begin();
    }
  }
  std::vector<int64_t> labels;
  labels.reserve(files.size());
  for (const auto& f : files) {
    if (label_of[static_cast<size_t>(f.label)] < 0) {
      throw DataError(fmt::format("{}: class {} is not one of the model's ({})", index.dir,
                                  index.class_names[static_cast<size_t>(f.label)],
                                  fmt::join(class_names, ", ")));
    }
    labels.push_back(label_of[static_cast<size_t>(f.label)]);
  }
  return {std::move(files), std::move(labels)};
}

/// `files` decoded at `spec`, labelled by `labels`; bad images left out.
Dataset decoded_test_set(const std::string& dir,
                         const std::vector<ImageFile>& files,
                         const std::vector<int64_t>& file_labels,
                         const ImageSpec& spec,
                         const DecodeOptions& options,
                         std::vector<BadImage>& bad) {
  const DecodedImages decoded = decode_image_files(dir, files, spec, false, options);
  bad = decoded.bad;
  std::vector<int64_t> rows;
  std::vector<int64_t> labels;
  for (size_t i = 0; i < files.size(); ++i) {
    if (decoded.ok[i]) {
      rows.push_back(static_cast<int64_t>(i));
      labels.push_back(file_labels[i]);
    }
  }
  return folder_dataset(decoded, rows, labels);
}

}  // namespace

Dataset folder_test_set(const std::string& dir,
                        const std::vector<std::string>& class_names,
                        const ImageSpec& spec,
                        int64_t limit,
                        const DecodeOptions& options,
                        std::vector<BadImage>& bad) {
  auto [files, labels] = model_test_files(index_image_folder(dir), class_names);
  if (limit > 0 && static_cast<int64_t>(files.size()) > limit) {
    files.resize(static_cast<size_t>(limit));
    labels.resize(static_cast<size_t>(limit));
  }
  return decoded_test_set(dir, files, labels, spec, options, bad);
}

Dataset folder_test_sample(const std::string& dir,
                           const std::vector<std::string>& class_names,
                           const ImageSpec& spec,
                           int64_t count,
                           const DecodeOptions& options,
                           std::vector<BadImage>& bad,
                           const std::vector<std::string>& held_out) {
  const FolderIndex index = index_image_folder(dir);
  auto [all_files, all_labels] = model_test_files(index, class_names);
  if (index.test.empty() && !held_out.empty()) {
    // A folder without test/: the files its training held out for testing,
    // when they are still there.
    const std::set<std::string> wanted(held_out.begin(), held_out.end());
    std::vector<ImageFile> kept;
    std::vector<int64_t> kept_labels;
    for (size_t i = 0; i < all_files.size(); ++i) {
      if (wanted.count(all_files[i].path) != 0) {
        kept.push_back(all_files[i]);
        kept_labels.push_back(all_labels[i]);
      }
    }
    if (!kept.empty()) {
      all_files = std::move(kept);
      all_labels = std::move(kept_labels);
    }
  }
  // The files come class by class: the first `count` could all be of one
  // class, so the sample takes every (n / count)-th file instead.
  const auto n = static_cast<int64_t>(all_files.size());
  const int64_t take = std::clamp<int64_t>(count, 0, n);
  std::vector<ImageFile> files;
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < take; ++i) {
    const auto at = static_cast<size_t>(i * n / take);
    files.push_back(all_files[at]);
    labels.push_back(all_labels[at]);
  }
  return decoded_test_set(dir, files, labels, spec, options, bad);
}

nlohmann::ordered_json folder_metadata(nlohmann::ordered_json metadata,
                                       const std::vector<std::string>& class_names,
                                       const ImageSpec& spec) {
  if (!metadata.is_object()) {
    metadata = nlohmann::ordered_json::object();
  }
  for (const char* key : {"dataset", "labels"}) {
    metadata.erase(key);
  }
  metadata["classNames"] = class_names;
  metadata["imageSize"] = {spec.height, spec.width};
  metadata["colorMode"] = color_mode_name(spec.color_mode);
  // How predict and the page must resize images, when not Keras's default.
  metadata.erase("interpolation");
  metadata.erase("cropToAspectRatio");
  if (spec.interpolation != Interpolation::kBilinear) {
    metadata["interpolation"] = interpolation_name(spec.interpolation);
  }
  if (spec.crop_to_aspect_ratio) {
    metadata["cropToAspectRatio"] = true;
  }
  return metadata;
}

}  // namespace mnist
