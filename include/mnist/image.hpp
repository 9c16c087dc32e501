// Digit images from files, read as hostile input: PNG (through libspng, a
// decoder made for untrusted files) and PGM (P2, P5: a bounded reader of our
// own), recognised by their first bytes, their size checked from the header
// before any pixel is decoded. They are prepared the way MNIST digits were:
// grayscale, bright ink on black, the digit scaled into a 20x20 box and
// centred by its centre of mass in 28x28.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include <ATen/core/Tensor.h>

namespace mnist {

/// The largest image decoded: width x height at most this many pixels
/// (4096 x 4096), and neither side above kMaxImageSide. A file whose header
/// claims more is refused before decoding (a decompression bomb costs
/// nothing).
constexpr int64_t kMaxImagePixels = int64_t{4096} * 4096;
constexpr int64_t kMaxImageSide = 16384;
/// Image files larger than this are refused before they are read.
constexpr int64_t kMaxImageFileBytes = int64_t{64} << 20;

/// Decodes a PNG or PGM image held in memory (any bit depth, colour type,
/// palette or interlacing; transparent pixels count as background) into
/// [H,W] uint8 ink, 255 = full ink: with `dark_ink` (dark ink on a light
/// background) the image is inverted. Colour becomes luma (0.299 R + 0.587 G
/// + 0.114 B, in integers). Throws DataError starting with `origin` and
/// saying why for anything else: another format, a size over the limits
/// above, a truncated or corrupt file.
at::Tensor decode_gray_image(const uint8_t* data,
                             size_t size,
                             const std::string& origin,
                             bool dark_ink);

/// decode_gray_image of a file (at most kMaxImageFileBytes). Throws
/// DataError naming the file.
at::Tensor read_gray_image(const std::string& path, bool dark_ink);

/// MNIST-style [1,1,28,28] float32 in [0,1] from a [H,W] ink image (uint8
/// 0..255 as read_gray_image gives, or float32 in [0,1]): crops to the ink,
/// scales the longer side to 20 pixels (aspect kept; area averaging when
/// shrinking, done in bands so that a large image is never copied whole as
/// floats), and places it so that its centre of mass is at the centre.
/// Throws DataError with Remedy::kInvertImage when the image holds no ink.
at::Tensor mnist_style(const at::Tensor& ink, const std::string& origin);

/// read_gray_image + mnist_style.
at::Tensor load_digit_image(const std::string& path, bool dark_ink);

}  // namespace mnist

// ---- TEMPORARY: the contract of the image decoder for datasets (the img branch
// replaces this block and src/image_dataset_tmp.cpp) ----
#include <optional>
#include <vector>
namespace mnist {
enum class ColorMode { kGrayscale, kRgb };
const char* color_mode_name(ColorMode mode);
std::optional<ColorMode> parse_color_mode(const std::string& text);
int channels_of(ColorMode mode);
enum class Interpolation { kBilinear, kNearest };
const char* interpolation_name(Interpolation interpolation);
std::optional<Interpolation> parse_interpolation(const std::string& text);
struct ImageHeader {
  std::string format;
  int64_t height = 0;
  int64_t width = 0;
  int channels = 0;
};
ImageHeader read_image_header(const uint8_t* data, size_t size, const std::string& origin);
struct ImageSpec {
  int64_t height = 0;
  int64_t width = 0;
  ColorMode color_mode = ColorMode::kRgb;
  Interpolation interpolation = Interpolation::kBilinear;
  bool crop_to_aspect_ratio = false;
};
void decode_for_dataset(const uint8_t* data,
                        size_t size,
                        const std::string& origin,
                        const ImageSpec& spec,
                        uint8_t* out);
std::vector<uint8_t> read_image_file(const std::string& path);
}  // namespace mnist
