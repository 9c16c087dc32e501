// Strict reader for the IDX files MNIST ships in (raw or gzip-compressed).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace mnist {

constexpr uint32_t kIdxImagesMagic = 2051;  ///< unsigned byte, 3 dimensions
constexpr uint32_t kIdxLabelsMagic = 2049;  ///< unsigned byte, 1 dimension
constexpr int64_t kImageSide = 28;
constexpr int64_t kNumClasses = 10;

/// The hint appended to data errors: how to get correct files.
extern const char* const kFetchHint;

/// The raw content of one IDX file after its header was checked.
struct IdxFile {
  uint32_t magic = 0;
  std::vector<int64_t> dims;  ///< e.g. {N, 28, 28} or {N}
  std::vector<uint8_t> data;  ///< product(dims) bytes
};

/// Reads and checks an IDX file of unsigned bytes. Gzip files (the JS
/// example's *.gz downloads) are detected by content and decompressed.
/// Checks: the magic is `expected_magic`, the dimensions are {N,28,28} for
/// images and {N} for labels, and the file holds exactly the bytes the header
/// promises. Any N is accepted. Throws DataError naming the file, what was
/// expected, what was found and how to fix it.
IdxFile read_idx(const std::string& path, uint32_t expected_magic);

/// [N,1,28,28] float32 in [0,1] (pixel / 255).
at::Tensor read_idx_images(const std::string& path);

/// [N] int64 in 0..9. Throws DataError for a label outside 0..9.
at::Tensor read_idx_labels(const std::string& path);

}  // namespace mnist
