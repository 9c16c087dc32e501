// The image module's decoders, one file each (png.cpp, jpeg.cpp, pgm.cpp), and
// what they share. Internal to src/image/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "mnist/image.hpp"

namespace mnist::image_codecs {

[[noreturn]] void fail(const std::string& origin, const std::string& why);

/// Throws DataError unless width x height is within kMaxImagePixels and
/// kMaxImageSide (and not empty).
void check_dimensions(int64_t width, int64_t height, const std::string& origin);

/// Decoded pixels: height x width x channels uint8, HWC.
struct Pixels {
  int64_t height = 0;
  int64_t width = 0;
  int channels = 0;
  std::vector<uint8_t> data;
};

// PNG (libspng). `data` starts with the PNG signature.
ImageHeader png_header(const uint8_t* data, size_t size, const std::string& origin);
/// As TensorFlow's decode_png with channels 1 or 3 (see image.hpp).
Pixels decode_png(const uint8_t* data, size_t size, const std::string& origin, int channels);
/// [H,W] uint8 ink, alpha composited over the background (decode_gray_image).
at::Tensor decode_png_ink(const uint8_t* data,
                          size_t size,
                          const std::string& origin,
                          bool dark_ink);

// JPEG (TurboJPEG). `data` starts with FF D8 FF.
ImageHeader jpeg_header(const uint8_t* data, size_t size, const std::string& origin);
/// As TensorFlow's decode_jpeg with channels 1 or 3 (see image.hpp).
Pixels decode_jpeg(const uint8_t* data, size_t size, const std::string& origin, int channels);

// PGM, P2 or P5. `data` starts with "P2" or "P5".
ImageHeader pgm_header(const uint8_t* data, size_t size, const std::string& origin);
/// One channel, samples scaled to 0..255 (rounded).
Pixels decode_pgm(const uint8_t* data, size_t size, const std::string& origin);

}  // namespace mnist::image_codecs
