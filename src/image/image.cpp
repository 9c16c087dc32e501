// The image module's entry points: the format recognised by its first bytes,
// the decoders (png.cpp, jpeg.cpp, pgm.cpp) called, dataset records resized
// (resize.cpp), files read with a bound, and MNIST-style normalisation (crop,
// 20x20 fit, centre of mass at the centre).
#include "mnist/image.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include <spdlog/fmt/fmt.h>

#include <ATen/ATen.h>

#include "image/codecs.hpp"
#include "mnist/error.hpp"

namespace mnist {

namespace image_codecs {

void fail(const std::string& origin, const std::string& why) {
  throw DataError(origin + ": " + why);
}

void check_dimensions(int64_t width, int64_t height, const std::string& origin) {
  if (width <= 0 || height <= 0) {
    fail(origin, fmt::format("the image is {}x{} pixels: it has none", width, height));
  }
  if (width > kMaxImageSide || height > kMaxImageSide || width * height > kMaxImagePixels) {
    fail(origin, fmt::format("the image is {}x{} pixels, more than this tool decodes ({} pixels, "
                             "e.g. 4096x4096, and at most {} on a side): scale it down",
                             width, height, kMaxImagePixels, kMaxImageSide));
  }
}

}  // namespace image_codecs

namespace {

using image_codecs::fail;

constexpr double kInkThreshold = 0.2;  ///< what counts as ink when cropping
constexpr int kInkThresholdByte = 51;  ///< the same for uint8 ink (0.2 * 255)
constexpr int64_t kBox = 20;           ///< MNIST fits digits into 20x20
constexpr int64_t kSide = 28;
constexpr int64_t kBandRows = 256;  ///< rows converted to float at a time when shrinking

constexpr uint8_t kPngSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};

enum class Format { kPng, kJpeg, kPgm };

bool starts_with(const uint8_t* data, size_t size, const char* magic, size_t n) {
  return size >= n && std::memcmp(data, magic, n) == 0;
}

/// The name of a format this tool does not read, recognised by its first
/// bytes, or nullptr.
const char* other_format(const uint8_t* data, size_t size) {
  struct Magic {
    const char* bytes;
    size_t n;
    const char* name;
  };
  static const Magic kMagics[] = {
      {"GIF8", 4, "GIF"},        {"BM", 2, "BMP"},
      {"8BPS", 4, "Photoshop"},  {"II*\0", 4, "TIFF"},
      {"MM\0*", 4, "TIFF"},      {"#?RADIANCE", 10, "HDR"},
      {"#?RGBE", 6, "HDR"},      {"\x53\x80\xF6\x34", 4, "PIC"},
      {"qoif", 4, "QOI"},        {"P1", 2, "PBM"},
      {"P4", 2, "PBM"},          {"P3", 2, "PPM (colour)"},
      {"P6", 2, "PPM (colour)"}, {"P7", 2, "PAM"},
  };
  if (size >= 12 && std::memcmp(data, "RIFF", 4) == 0 && std::memcmp(data + 8, "WEBP", 4) == 0) {
    return "WebP";
  }
  for (const Magic& m : kMagics) {
    if (starts_with(data, size, m.bytes, m.n)) {
      return m.name;
    }
  }
  return nullptr;
}

/// The format of `data` by its first bytes; DataError for anything else.
Format format_of(const uint8_t* data, size_t size, const std::string& origin) {
  if (size == 0) {
    fail(origin, "the file is empty (expected a PNG, JPEG or PGM image)");
  }
  if (starts_with(data, size, reinterpret_cast<const char*>(kPngSignature), 8)) {
    return Format::kPng;
  }
  // TensorFlow's decode_image checks the same three bytes.
  if (starts_with(data, size, "\xFF\xD8\xFF", 3)) {
    return Format::kJpeg;
  }
  if (starts_with(data, size, "P5", 2) || starts_with(data, size, "P2", 2)) {
    return Format::kPgm;
  }
  if (const char* name = other_format(data, size)) {
    fail(origin, fmt::format("a {} image: only PNG, JPEG and PGM (P2, P5) images are read; "
                             "convert it to PNG",
                             name));
  }
  std::string first;
  for (size_t i = 0; i < std::min<size_t>(size, 8); ++i) {
    first += fmt::format("{}{:02x}", i == 0 ? "" : " ", data[i]);
  }
  fail(origin, fmt::format("not a PNG, JPEG or PGM image (its first bytes are {})", first));
}

image_codecs::Pixels decode_pixels(const uint8_t* data,
                                   size_t size,
                                   const std::string& origin,
                                   int channels) {
  switch (format_of(data, size, origin)) {
    case Format::kPng:
      return image_codecs::decode_png(data, size, origin, channels);
    case Format::kJpeg:
      return image_codecs::decode_jpeg(data, size, origin, channels);
    case Format::kPgm:
      break;
  }
  image_codecs::Pixels gray = image_codecs::decode_pgm(data, size, origin);
  if (channels == 1) {
    return gray;
  }
  image_codecs::Pixels rgb;
  rgb.height = gray.height;
  rgb.width = gray.width;
  rgb.channels = 3;
  rgb.data.resize(gray.data.size() * 3);
  for (size_t i = 0; i < gray.data.size(); ++i) {
    std::fill_n(rgb.data.begin() + static_cast<std::ptrdiff_t>(3 * i), 3, gray.data[i]);
  }
  return rgb;
}

/// Sum over rows and columns of adaptive average pooling (as
/// at::adaptive_avg_pool2d: output cell i averages input rows
/// [floor(i*in/out), ceil((i+1)*in/out))) as a [out, in] matrix.
at::Tensor pooling_matrix(int64_t out, int64_t in) {
  at::Tensor m = at::zeros({out, in}, at::kFloat);
  for (int64_t i = 0; i < out; ++i) {
    const int64_t start = (i * in) / out;
    const int64_t stop = ((i + 1) * in + out - 1) / out;
    m[i].slice(0, start, stop).fill_(1.0 / static_cast<double>(stop - start));
  }
  return m;
}

/// Area-averages a [h,w] uint8 or float image to [nh,nw] float in [0,1],
/// converting kBandRows rows to float at a time.
at::Tensor area_average(const at::Tensor& image, int64_t nh, int64_t nw) {
  const bool bytes = image.scalar_type() == at::kByte;
  const int64_t h = image.size(0);
  const at::Tensor rows = pooling_matrix(nh, h);
  at::Tensor acc = at::zeros({nh, image.size(1)}, at::kFloat);
  for (int64_t r0 = 0; r0 < h; r0 += kBandRows) {
    const int64_t r1 = std::min(h, r0 + kBandRows);
    at::Tensor band = image.slice(0, r0, r1).to(at::kFloat);
    if (bytes) {
      band.div_(255.0);
    }
    acc.addmm_(rows.slice(1, r0, r1), band);
  }
  return acc.mm(pooling_matrix(nw, image.size(1)).t());
}

}  // namespace

const char* color_mode_name(ColorMode mode) {
  return mode == ColorMode::kGrayscale ? "grayscale" : "rgb";
}

std::optional<ColorMode> parse_color_mode(const std::string& text) {
  if (text == "grayscale") {
    return ColorMode::kGrayscale;
  }
  if (text == "rgb") {
    return ColorMode::kRgb;
  }
  return std::nullopt;
}

int channels_of(ColorMode mode) { return mode == ColorMode::kGrayscale ? 1 : 3; }

const char* interpolation_name(Interpolation interpolation) {
  return interpolation == Interpolation::kNearest ? "nearest" : "bilinear";
}

std::optional<Interpolation> parse_interpolation(const std::string& text) {
  if (text == "bilinear") {
    return Interpolation::kBilinear;
  }
  if (text == "nearest") {
    return Interpolation::kNearest;
  }
  return std::nullopt;
}

ImageHeader read_image_header(const uint8_t* data, size_t size, const std::string& origin) {
  switch (format_of(data, size, origin)) {
    case Format::kPng:
      return image_codecs::png_header(data, size, origin);
    case Format::kJpeg:
      return image_codecs::jpeg_header(data, size, origin);
    case Format::kPgm:
      break;
  }
  return image_codecs::pgm_header(data, size, origin);
}

void decode_for_dataset(const uint8_t* data,
                        size_t size,
                        const std::string& origin,
                        const ImageSpec& spec,
                        uint8_t* out) {
  // The record obeys the same limits as the image (its float32 resize buffer
  // is at most 192 MiB).
  if (spec.height < 1 || spec.width < 1 || spec.height > kMaxImageSide ||
      spec.width > kMaxImageSide || spec.height * spec.width > kMaxImagePixels) {
    throw ConfigError(
        fmt::format("{}: the image size {}x{} is outside 1..{} on a side or over "
                    "{} pixels",
                    origin, spec.height, spec.width, kMaxImageSide, kMaxImagePixels));
  }
  const int channels = channels_of(spec.color_mode);
  const image_codecs::Pixels pixels = decode_pixels(data, size, origin, channels);
  const int64_t row_stride = pixels.width * channels;
  CropBox box{0, 0, pixels.height, pixels.width};
  if (spec.crop_to_aspect_ratio) {
    box = aspect_crop(pixels.height, pixels.width, spec.height, spec.width);
  }
  const uint8_t* origin_pixel = pixels.data.data() + box.top * row_stride + box.left * channels;
  const int64_t out_row = spec.width * channels;
  if (box.height == spec.height && box.width == spec.width) {
    // Already at the size: both kernels would give the pixels back exactly.
    for (int64_t y = 0; y < spec.height; ++y) {
      std::memcpy(out + y * out_row, origin_pixel + y * row_stride, static_cast<size_t>(out_row));
    }
    return;
  }
  // This thread's resize buffer, kept for its next image (a folder's
  // decoding threads resize thousands of images of one size).
  thread_local std::vector<float> resized;
  resized.resize(static_cast<size_t>(spec.height * out_row));
  resize_image(origin_pixel, box.height, box.width, row_stride, channels, spec.height, spec.width,
               spec.interpolation, resized.data());
  // The pointer and count held in locals: `out` is bytes, which may alias
  // anything, so the vector's size would be read again for every byte and
  // the loop would not be vectorised.
  const float* values = resized.data();
  const size_t count = resized.size();
  for (size_t i = 0; i < count; ++i) {
    // Halves to even, as tf.round: adding and taking away 2^23 leaves a
    // float in [0, 2^23) rounded to an integer in the default rounding mode
    // (nearest, ties to even), as std::nearbyint does, but without a call
    // into libm. Interpolating bytes never leaves 0..255; the clamp, on the
    // integer (a float clamp stops GCC vectorising the loop), only guards
    // the conversion.
    const auto r = static_cast<int32_t>((values[i] + 8388608.0F) - 8388608.0F);
    out[i] = static_cast<uint8_t>(r < 0 ? 0 : r > 255 ? 255 : r);
  }
  if (resized.capacity() > (size_t{16} << 20)) {
    std::vector<float>().swap(resized);  // a large record's buffer is not kept
  }
}

namespace {

/// An open image file, checked to be a regular file of at most
/// kMaxImageFileBytes; closed when it goes.
struct ImageFd {
  int fd = -1;
  int64_t size = 0;
  explicit ImageFd(const std::string& path) : fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
    if (fd < 0) {
      fail(path, std::string("cannot open the image: ") + std::strerror(errno));
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      fail(path, "not a regular file (expected a PNG, JPEG or PGM image)");
    }
    if (st.st_size > kMaxImageFileBytes) {
      ::close(fd);
      fail(path, fmt::format("the file is {} bytes, more than the {} MiB an image may have here",
                             st.st_size, kMaxImageFileBytes >> 20));
    }
    size = st.st_size;
  }
  ~ImageFd() { ::close(fd); }
  ImageFd(const ImageFd&) = delete;
  ImageFd& operator=(const ImageFd&) = delete;

  /// Bytes [0, n) into `bytes` (resized to n); a file that shrank is an error.
  void read(const std::string& path, size_t n, std::vector<uint8_t>& bytes) const {
    bytes.resize(n);
    size_t got = 0;
    while (got < n) {
      const ssize_t r = ::pread(fd, bytes.data() + got, n - got, static_cast<off_t>(got));
      if (r < 0 && errno == EINTR) {
        continue;
      }
      if (r <= 0) {
        fail(path, std::string("cannot read the image: ") +
                       (r < 0 ? std::strerror(errno) : "it shrank while read"));
      }
      got += static_cast<size_t>(r);
    }
  }
};

}  // namespace

void read_image_file(const std::string& path, std::vector<uint8_t>& bytes) {
  const ImageFd file(path);
  file.read(path, static_cast<size_t>(file.size), bytes);
}

std::vector<uint8_t> read_image_file(const std::string& path) {
  std::vector<uint8_t> bytes;
  read_image_file(path, bytes);
  return bytes;
}

ImageHeader read_image_file_header(const std::string& path, const std::string& origin) {
  const std::string& name = origin.empty() ? path : origin;
  const ImageFd file(path);
  const auto size = static_cast<size_t>(file.size);
  std::vector<uint8_t> bytes;
  if (size > kImageHeadBytes) {
    file.read(path, kImageHeadBytes, bytes);
    try {
      return read_image_header(bytes.data(), bytes.size(), name);
    } catch (const DataError&) {
      // The header lies further (or the file is bad): the whole file
      // decides, as read_image_header of all its bytes would.
    }
  }
  file.read(path, size, bytes);
  return read_image_header(bytes.data(), bytes.size(), name);
}

at::Tensor decode_gray_image(const uint8_t* data,
                             size_t size,
                             const std::string& origin,
                             bool dark_ink) {
  const Format format = format_of(data, size, origin);
  if (format == Format::kPng) {
    return image_codecs::decode_png_ink(data, size, origin, dark_ink);
  }
  // JPEG and PGM have no alpha: the gray level is the ink. A colour JPEG
  // (CMYK too) becomes RGB as for a dataset, then luma as PNG colour does.
  const bool jpeg = format == Format::kJpeg;
  const image_codecs::Pixels pixels = jpeg ? image_codecs::decode_jpeg(data, size, origin, 3)
                                           : image_codecs::decode_pgm(data, size, origin);
  at::Tensor ink = at::empty({pixels.height, pixels.width}, at::kByte);
  uint8_t* out = ink.data_ptr<uint8_t>();
  const size_t n = static_cast<size_t>(pixels.height * pixels.width);
  for (size_t i = 0; i < n; ++i) {
    uint32_t gray = pixels.data[i];
    if (jpeg) {
      const uint8_t* rgb = pixels.data.data() + 3 * i;
      gray = (77U * rgb[0] + 150U * rgb[1] + 29U * rgb[2]) >> 8;  // exact for gray
    }
    out[i] = static_cast<uint8_t>(dark_ink ? 255 - gray : gray);
  }
  return ink;
}

at::Tensor read_gray_image(const std::string& path, bool dark_ink) {
  const std::vector<uint8_t> bytes = read_image_file(path);
  return decode_gray_image(bytes.data(), bytes.size(), path, dark_ink);
}

at::Tensor mnist_style(const at::Tensor& ink, const std::string& origin) {
  const bool bytes = ink.scalar_type() == at::kByte;
  const at::Tensor mask = bytes ? ink > kInkThresholdByte : ink > kInkThreshold;
  const at::Tensor rows = mask.any(1).nonzero();
  const at::Tensor cols = mask.any(0).nonzero();
  if (rows.numel() == 0) {
    throw DataError(origin + ": no digit found (the image is all background)",
                    Remedy::kInvertImage);
  }
  const int64_t top = rows.min().item<int64_t>();
  const int64_t bottom = rows.max().item<int64_t>() + 1;
  const int64_t left = cols.min().item<int64_t>();
  const int64_t right = cols.max().item<int64_t>() + 1;
  const at::Tensor crop = ink.slice(0, top, bottom).slice(1, left, right);
  const int64_t h = bottom - top;
  const int64_t w = right - left;
  const double scale = static_cast<double>(kBox) / static_cast<double>(std::max(h, w));
  const int64_t nh = std::max<int64_t>(1, std::lround(static_cast<double>(h) * scale));
  const int64_t nw = std::max<int64_t>(1, std::lround(static_cast<double>(w) * scale));
  at::Tensor digit;
  if (nh < h || nw < w) {
    digit = area_average(crop, nh, nw);
  } else {  // at most 20x20: small enough to copy
    at::Tensor small = crop.to(at::kFloat);
    if (bytes) {
      small.div_(255.0);
    }
    digit = at::upsample_bilinear2d(small.unsqueeze(0).unsqueeze(0), {nh, nw},
                                    /*align_corners=*/false)
                .squeeze(0)
                .squeeze(0);
  }
  digit = digit.clamp(0.0, 1.0);

  // Centre of mass of the scaled digit, placed at the image centre.
  const at::Tensor total = digit.sum();
  const double cy =
      (digit.sum(1) * at::arange(nh, at::kFloat)).sum().item<double>() / total.item<double>();
  const double cx =
      (digit.sum(0) * at::arange(nw, at::kFloat)).sum().item<double>() / total.item<double>();
  const auto place = [](double centre, int64_t size) {
    const auto offset = static_cast<int64_t>(std::lround(kSide / 2.0 - 0.5 - centre));
    return std::clamp<int64_t>(offset, 0, kSide - size);
  };
  const int64_t y0 = place(cy, nh);
  const int64_t x0 = place(cx, nw);
  at::Tensor out = at::zeros({kSide, kSide}, at::kFloat);
  out.slice(0, y0, y0 + nh).slice(1, x0, x0 + nw).copy_(digit);
  return out.view({1, 1, kSide, kSide});
}

at::Tensor load_digit_image(const std::string& path, bool dark_ink) {
  return mnist_style(read_gray_image(path, dark_ink), path);
}

}  // namespace mnist
