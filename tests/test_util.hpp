// Test helpers: an RAII temporary folder and writers for IDX files (raw or
// gzip) made on the fly.
#pragma once

#include <ftw.h>
#include <zlib.h>

#include <cstdio>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "mnist/model.hpp"

namespace mnist::test {

/// A fresh folder under the system temp dir, removed with its content.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("mnist-test-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    // Not std::filesystem::remove_all: PyTorch's pip libtorch.so exports a
    // broken copy of that symbol which crashes when interposed (seen with
    // torch 2.11 on the GPU machine).
    nftw(
        path_.c_str(),
        [](const char* p, const struct stat*, int, struct FTW*) { return std::remove(p); },
        /*nopenfd=*/16, FTW_DEPTH | FTW_PHYS);
  }
  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

inline void put_be32(std::vector<uint8_t>& out, uint32_t v) {
  out.push_back(static_cast<uint8_t>(v >> 24));
  out.push_back(static_cast<uint8_t>(v >> 16));
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v));
}

/// The bytes of an IDX file: big-endian magic, dims, then `payload`.
inline std::vector<uint8_t> idx_bytes(uint32_t magic,
                                      const std::vector<uint32_t>& dims,
                                      const std::vector<uint8_t>& payload) {
  std::vector<uint8_t> out;
  put_be32(out, magic);
  for (uint32_t d : dims) {
    put_be32(out, d);
  }
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

/// One TempDir for the whole process, removed when it exits normally (the
/// fuzz harnesses' scratch space; $TMPDIR picks where, e.g. /dev/shm).
inline const TempDir& process_temp_dir() {
  static const TempDir dir;
  return dir;
}

inline void write_bytes(const std::string& path, const void* data, size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  if (!out) {
    throw std::runtime_error("cannot write " + path);
  }
}

inline void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  write_bytes(path, bytes.data(), bytes.size());
}

inline void write_gzip(const std::string& path, const std::vector<uint8_t>& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  if (f == nullptr || gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) !=
                          static_cast<int>(bytes.size())) {
    throw std::runtime_error("cannot write " + path);
  }
  gzclose(f);
}

/// Writes an IDX file; with `gzip` the file is compressed.
inline void write_idx(const std::string& path,
                      uint32_t magic,
                      const std::vector<uint32_t>& dims,
                      const std::vector<uint8_t>& payload,
                      bool gzip = false) {
  const auto bytes = idx_bytes(magic, dims, payload);
  if (gzip) {
    write_gzip(path, bytes);
  } else {
    write_bytes(path, bytes);
  }
}

/// `n` images whose pixel i of record r is (r + i) % 256, and labels r % 10.
inline void write_tiny_mnist(const std::string& dir,
                             const std::string& images_name,
                             const std::string& labels_name,
                             uint32_t n) {
  std::vector<uint8_t> pixels(static_cast<size_t>(n) * 28 * 28);
  for (size_t i = 0; i < pixels.size(); ++i) {
    pixels[i] = static_cast<uint8_t>((i / 784 + i % 784) % 256);
  }
  std::vector<uint8_t> labels(n);
  for (uint32_t r = 0; r < n; ++r) {
    labels[r] = static_cast<uint8_t>(r % 10);
  }
  write_idx(dir + "/" + images_name, 2051, {n, 28, 28}, pixels);
  write_idx(dir + "/" + labels_name, 2049, {n}, labels);
}

/// A registry layer of TF.js class `cls` named `name`, made from `config`
/// (TF.js's config fields; every other field at its default).
inline LayerPtr layer(const char* cls, const char* name, nlohmann::ordered_json config = {}) {
  if (!config.is_object()) {
    config = nlohmann::ordered_json::object();
  }
  config["name"] = name;
  return make_layer(cls, config);
}

}  // namespace mnist::test
