// IDX reader: big-endian header, strict checks, gzip through zlib (whose
// gzread also passes uncompressed files through unchanged).
#include "mnist/idx.hpp"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sstream>

#include <ATen/ATen.h>

#include "mnist/error.hpp"

namespace mnist {

const char* const kFetchHint = "run scripts/download_mnist.sh to fetch verified MNIST files";

namespace {

constexpr size_t kChunk = size_t{1} << 20;

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw DataError(path + ": " + what + "; " + kFetchHint, Remedy::kDataFolder);
}

/// Owns a zlib file handle.
class GzReader {
 public:
  explicit GzReader(const std::string& path) : path_(path) {
    file_ = gzopen(path.c_str(), "rb");
    if (file_ == nullptr) {
      const int err = errno;
      fail(path,
           std::string("cannot open (") + (err != 0 ? std::strerror(err) : "out of memory") + ")");
    }
  }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;
  ~GzReader() { gzclose(file_); }

  /// Reads up to `n` bytes; returns how many were read (fewer only at EOF).
  size_t read(uint8_t* dst, size_t n) {
    size_t total = 0;
    while (total < n) {
      const auto want = static_cast<unsigned>(std::min(n - total, size_t{1} << 30));
      const int got = gzread(file_, dst + total, want);
      if (got < 0) {
        int code = 0;
        const char* msg = gzerror(file_, &code);
        fail(path_, std::string("read error or corrupt gzip data (") +
                        (msg != nullptr ? msg : "unknown") + ")");
      }
      if (got == 0) {
        break;
      }
      total += static_cast<size_t>(got);
    }
    return total;
  }

 private:
  std::string path_;
  gzFile file_ = nullptr;
};

uint32_t big_endian_u32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

std::string kind_of(uint32_t magic) {
  if (magic == kIdxImagesMagic) {
    return "images";
  }
  if (magic == kIdxLabelsMagic) {
    return "labels";
  }
  return "unknown";
}

std::string dims_text(const std::vector<int64_t>& dims) {
  std::ostringstream out;
  for (size_t i = 0; i < dims.size(); ++i) {
    out << (i == 0 ? "" : "x") << dims[i];
  }
  return out.str();
}

}  // namespace

IdxFile read_idx(const std::string& path, uint32_t expected_magic) {
  GzReader reader(path);
  IdxFile idx;

  uint8_t word[4];
  const size_t got_magic = reader.read(word, 4);
  if (got_magic < 4) {
    fail(path, "truncated: " + std::to_string(got_magic) +
                   " bytes, but an IDX header needs at least 4 (expected an "
                   "MNIST " +
                   kind_of(expected_magic) + " file)");
  }
  idx.magic = big_endian_u32(word);
  if (idx.magic != expected_magic) {
    std::string guess;
    if (idx.magic == kIdxImagesMagic || idx.magic == kIdxLabelsMagic) {
      guess = " (this looks like an MNIST " + kind_of(idx.magic) +
              " file: are the file names swapped?)";
    }
    fail(path, "bad magic " + std::to_string(idx.magic) + " (expected " +
                   std::to_string(expected_magic) + " for MNIST " + kind_of(expected_magic) + ")" +
                   guess);
  }

  const size_t rank = expected_magic == kIdxImagesMagic ? 3 : 1;
  std::vector<uint8_t> header(rank * 4);
  const size_t got_dims = reader.read(header.data(), header.size());
  if (got_dims < header.size()) {
    fail(path, "truncated header: expected " + std::to_string(rank) + " dimension sizes (" +
                   std::to_string(header.size()) + " bytes) after the magic, found " +
                   std::to_string(got_dims) + " bytes");
  }
  uint64_t payload = 1;
  for (size_t i = 0; i < rank; ++i) {
    const uint32_t dim = big_endian_u32(header.data() + 4 * i);
    idx.dims.push_back(static_cast<int64_t>(dim));
    payload *= dim;  // at most (2^32-1) * 28 * 28 after the check below
  }
  if (rank == 3 && (idx.dims[1] != kImageSide || idx.dims[2] != kImageSide)) {
    fail(path, "wrong dimensions " + dims_text(idx.dims) + " (expected Nx" +
                   std::to_string(kImageSide) + "x" + std::to_string(kImageSide) + ")");
  }

  // Grow the buffer as data arrives, so a header that lies about its record
  // count cannot make us allocate more than the file really holds.
  const int64_t records = idx.dims[0];
  const uint64_t record_bytes = payload / std::max<uint64_t>(records, 1);
  while (idx.data.size() < payload) {
    const size_t old_size = idx.data.size();
    const size_t step = static_cast<size_t>(std::min<uint64_t>(kChunk, payload - old_size));
    idx.data.resize(old_size + step);
    const size_t got = reader.read(idx.data.data() + old_size, step);
    idx.data.resize(old_size + got);
    if (got < step) {
      fail(path, "truncated or record count mismatch: the header promises " +
                     std::to_string(records) + " records (" + std::to_string(payload) +
                     " data bytes), but the file "
                     "holds " +
                     std::to_string(idx.data.size()) + " data bytes (" +
                     std::to_string(idx.data.size() / record_bytes) + " whole records)");
    }
  }
  uint8_t extra = 0;
  if (reader.read(&extra, 1) != 0) {
    fail(path, "record count mismatch: the header promises " + std::to_string(records) +
                   " records (" + std::to_string(payload) +
                   " data bytes), but the file holds more data than that");
  }
  return idx;
}

at::Tensor read_idx_images(const std::string& path) {
  IdxFile idx = read_idx(path, kIdxImagesMagic);
  const int64_t n = idx.dims[0];
  return at::from_blob(idx.data.data(), {n, 1, kImageSide, kImageSide}, at::kByte)
      .to(at::kFloat)
      .div_(255.0);
}

at::Tensor read_idx_labels(const std::string& path) {
  IdxFile idx = read_idx(path, kIdxLabelsMagic);
  for (size_t i = 0; i < idx.data.size(); ++i) {
    if (idx.data[i] >= kNumClasses) {
      fail(path, "label " + std::to_string(idx.data[i]) + " at record " + std::to_string(i) +
                     " is out of range (expected 0..9)");
    }
  }
  const auto n = static_cast<int64_t>(idx.data.size());
  return at::from_blob(idx.data.data(), {n}, at::kByte).to(at::kLong);
}

}  // namespace mnist
