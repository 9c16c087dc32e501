// Image files read as hostile input: PNG (through libspng, a decoder made for
// untrusted files), JPEG (through libjpeg-turbo's TurboJPEG API) and PGM (P2,
// P5: a bounded reader of our own), recognised by their first bytes, their
// size checked from the header before any pixel is decoded. Two uses:
//
// - Digits for `predict` (decode_gray_image, load_digit_image): grayscale,
//   bright ink on black, the digit scaled into a 20x20 box and centred by its
//   centre of mass in 28x28, as MNIST digits were prepared.
// - Records of an image-folder dataset (decode_for_dataset): the pixels Keras 3's
//   image_dataset_from_directory gives (tf.io.decode_image, then tf.image.resize
//   or, with crop_to_aspect_ratio, Keras's smart_resize), rounded to uint8.
//
// What decode_for_dataset follows, read in TensorFlow's and Keras's sources
// (the details are in docs/design.md, "Image decoding"):
// - JPEG as decode_image's jpeg::Uncompress: the fast integer IDCT (TF's default
//   dct_method for DecodeImage is JDCT_IFAST: TJFLAG_FASTDCT here), fancy
//   chroma upsampling (TF's default; TurboJPEG's too), channels=1 as libjpeg's
//   JCS_GRAYSCALE output (the Y plane of a colour JPEG), channels=3 as JCS_RGB
//   (a gray JPEG replicated). A CMYK or YCCK JPEG becomes RGB with TF's own
//   integer formula (inverted when the file has an Adobe APP14 marker, as
//   libjpeg's saw_Adobe_marker); as grayscale it is refused, as libjpeg refuses
//   CMYK -> gray for TF. TF refuses truncated JPEGs (min_acceptable_fraction 1);
//   here every libjpeg warning (premature end of data, corrupt data) is an error.
// - PNG as TF's png_io.cc (libpng): alpha and tRNS dropped (png_set_strip_alpha,
//   nothing composited), 16-bit samples keep their high byte (png_set_strip_16),
//   gray replicated for channels=3, colour to gray for channels=1 with libpng's
//   png_set_rgb_to_gray(0.299, 0.587) in its integers: coefficients 9797, 19234
//   and 3737 out of 32768, (9797 R + 19234 G + 3737 B) >> 15 for 8-bit samples
//   (a pixel whose R, G and B are equal stays as it is), rounded (+16384) before
//   the shift for 16-bit ones, whose high byte is then kept. Palettes are
//   expanded first. One difference: libpng converts colour to gray through the
//   file's gamma when it has a gAMA or sRGB chunk (linear light); we ignore
//   those chunks, as TF does for channels=3.
// - PGM is ours (TF and Keras do not read it): samples scaled to 0..255, rounded.
// - Resizing as TF's ResizeBilinear and ResizeNearestNeighbor kernels with
//   half_pixel_centers=true, align_corners=false, no antialias (what
//   tf.image.resize runs), in float32 like them; crop_to_aspect_ratio as Keras's
//   smart_resize computes its centred box (float32 arithmetic, truncated).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

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

/// Keras's color_mode names. (rgba is not offered.)
enum class ColorMode { kGrayscale, kRgb };
const char* color_mode_name(ColorMode mode);  // "grayscale", "rgb"
std::optional<ColorMode> parse_color_mode(const std::string& text);
int channels_of(ColorMode mode);  // 1, 3

/// Keras's interpolation names: "bilinear" (Keras's default) and "nearest".
enum class Interpolation { kBilinear, kNearest };
const char* interpolation_name(Interpolation interpolation);
std::optional<Interpolation> parse_interpolation(const std::string& text);

/// What an image file's header says, read without decoding any pixel.
struct ImageHeader {
  std::string format;  ///< "png", "jpeg", "pgm"
  int64_t height = 0;
  int64_t width = 0;
  int channels = 0;  ///< 1 when the file is grayscale (PNG gray or gray+alpha,
                     ///< a one-component JPEG, PGM), 3 when it has colour (alpha
                     ///< not counted; a palette, CMYK and YCCK count as colour)
};
/// Throws DataError (origin first, then why) for anything not a PNG, JPEG or
/// PGM, a truncated header, or sizes over kMaxImagePixels / kMaxImageSide.
ImageHeader read_image_header(const uint8_t* data, size_t size, const std::string& origin);

/// How an image becomes a dataset record: Keras's image_dataset_from_directory
/// arguments.
struct ImageSpec {
  int64_t height = 0;
  int64_t width = 0;
  ColorMode color_mode = ColorMode::kRgb;
  Interpolation interpolation = Interpolation::kBilinear;
  bool crop_to_aspect_ratio = false;
};
/// Decodes a PNG, JPEG or PGM file held in memory as TensorFlow's
/// tf.io.decode_image(channels=C) does (C from spec.color_mode; see the top of
/// this header), then resizes it to spec.height x spec.width as Keras 3's
/// image_dataset_from_directory does (tf.image.resize with `interpolation`, no
/// antialias, half-pixel centres; with crop_to_aspect_ratio the centred
/// aspect_crop box first), and writes spec.height * spec.width * C bytes, HWC
/// order, into `out`. Bilinear values (float32, as TF computes them) are
/// rounded to the nearest uint8, halves to even (as tf.round and np.round);
/// nearest copies pixels. An image already at the size is copied exactly.
/// Thread-safe (no global state). Throws DataError (origin first, then why):
/// another format, sizes over the limits, a truncated or corrupt file (a JPEG
/// that libjpeg only warns about, e.g. premature end of data, is an error too),
/// a CMYK JPEG as grayscale; ConfigError for a spec size outside
/// 1..kMaxImageSide or over kMaxImagePixels.
void decode_for_dataset(const uint8_t* data,
                        size_t size,
                        const std::string& origin,
                        const ImageSpec& spec,
                        uint8_t* out);

/// The bytes of an image file, at most kMaxImageFileBytes; throws DataError
/// naming the path (missing, unreadable, too large, a folder). The second
/// form reads into `bytes`, reusing its memory (a decoding thread's buffer).
std::vector<uint8_t> read_image_file(const std::string& path);
void read_image_file(const std::string& path, std::vector<uint8_t>& bytes);

/// read_image_header of a file, reading no more of it than the header
/// needs: its first kImageHeadBytes (a PNG's IHDR is in its first 33 bytes,
/// a JPEG's frame header follows its APPn segments, which are rarely that
/// long), and the whole file only when the header is not found in them (a
/// JPEG whose EXIF or ICC segments are larger), so that a file's verdict is
/// the same as read_image_header's of all its bytes. Throws DataError as
/// read_image_file (naming `path`) and read_image_header (naming `origin`,
/// "" for `path`) do.
constexpr size_t kImageHeadBytes = size_t{64} << 10;
ImageHeader read_image_file_header(const std::string& path, const std::string& origin = "");

/// Keras's smart_resize box for crop_to_aspect_ratio: the largest centred
/// window of the target's aspect ratio, as its TensorFlow path computes it
/// (float32 quotients truncated to int32, at least 1 pixel, never more than
/// the image), e.g. 100x50 to 10x10 -> rows 25..75, all 50 columns.
struct CropBox {
  int64_t top = 0;
  int64_t left = 0;
  int64_t height = 0;
  int64_t width = 0;
};
CropBox aspect_crop(int64_t height, int64_t width, int64_t target_height, int64_t target_width);

/// tf.image.resize (antialias off) of an HWC uint8 image whose rows are
/// `row_stride` bytes apart, to out_height x out_width x channels float32:
/// TF's ResizeBilinear (half_pixel_centers: source = (i + 0.5) * in/out - 0.5,
/// the neighbours clamped to the image, lerped in float32 along x, then y) or
/// ResizeNearestNeighbor (source = floor((i + 0.5) * in/out), clamped).
void resize_image(const uint8_t* in,
                  int64_t in_height,
                  int64_t in_width,
                  int64_t row_stride,
                  int channels,
                  int64_t out_height,
                  int64_t out_width,
                  Interpolation interpolation,
                  float* out);

/// Decodes a PNG, JPEG or PGM image held in memory (any bit depth, colour
/// type, palette or interlacing; transparent pixels count as background) into
/// [H,W] uint8 ink, 255 = full ink: with `dark_ink` (dark ink on a light
/// background) the image is inverted. Colour becomes luma (0.299 R + 0.587 G +
/// 0.114 B, in integers; a JPEG's RGB as decode_for_dataset decodes it). Throws
/// DataError starting with `origin` and saying why for anything else: another
/// format, a size over the limits above, a truncated or corrupt file.
at::Tensor decode_gray_image(const uint8_t* data,
                             size_t size,
                             const std::string& origin,
                             bool dark_ink);

/// decode_gray_image of a file (read_image_file). Throws DataError naming the
/// file.
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
