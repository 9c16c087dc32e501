// Image decoding (PNG through libspng, PGM by a bounded reader of ours, both
// checked against the size limits from their headers before any pixel is
// decoded) and MNIST-style normalisation (crop, 20x20 fit, centre of mass at
// the centre).
#include "mnist/image.hpp"

#include <spng.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include <spdlog/fmt/fmt.h>

#include <ATen/ATen.h>

#include "mnist/error.hpp"

namespace mnist {

namespace {

constexpr double kInkThreshold = 0.2;  ///< what counts as ink when cropping
constexpr int kInkThresholdByte = 51;  ///< the same for uint8 ink (0.2 * 255)
constexpr int64_t kBox = 20;           ///< MNIST fits digits into 20x20
constexpr int64_t kSide = 28;
constexpr int64_t kBandRows = 256;  ///< rows converted to float at a time when shrinking
/// libspng's memory for ancillary chunks (text, ICC profiles: none is used
/// here); pixel data is streamed and bounded by the image limits.
constexpr size_t kPngChunkBytes = size_t{1} << 20;
constexpr size_t kPngChunkCacheBytes = size_t{4} << 20;

[[noreturn]] void fail(const std::string& origin, const std::string& why) {
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

/// Ink (255 = ink) of a pixel of luma `luma` and straight alpha `alpha`,
/// composited over the background: white for dark ink, black for bright ink.
uint8_t ink_of(uint32_t luma, uint32_t alpha, bool dark_ink) {
  const uint32_t background = dark_ink ? 255 : 0;
  const uint32_t gray = (luma * alpha + background * (255 - alpha) + 127) / 255;
  return static_cast<uint8_t>(dark_ink ? 255 - gray : gray);
}

void rgba_row_to_ink(const uint8_t* rgba, int64_t width, bool dark_ink, uint8_t* out) {
  for (int64_t x = 0; x < width; ++x, rgba += 4) {
    // Integer ITU-R 601 luma (77, 150, 29 out of 256): exact for gray pixels.
    const uint32_t luma = (77U * rgba[0] + 150U * rgba[1] + 29U * rgba[2]) >> 8;
    out[x] = ink_of(luma, rgba[3], dark_ink);
  }
}

// --- PNG -------------------------------------------------------------------

constexpr uint8_t kPngSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};

uint32_t big_endian32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

void check_png(int rc, const std::string& origin) {
  if (rc == 0) {
    return;
  }
  if (rc == SPNG_IO_EOF || rc == SPNG_EIDAT_TOO_SHORT) {
    fail(origin, "the PNG file is truncated (it ends before its image data does)");
  }
  fail(origin, std::string("not a valid PNG file: ") + spng_strerror(rc));
}

at::Tensor decode_png(const uint8_t* data, size_t size, const std::string& origin, bool dark_ink) {
  std::unique_ptr<spng_ctx, void (*)(spng_ctx*)> owner(spng_ctx_new(0), spng_ctx_free);
  spng_ctx* ctx = owner.get();
  if (ctx == nullptr) {
    throw std::bad_alloc();
  }
  spng_set_image_limits(ctx, kMaxImageSide, kMaxImageSide);
  spng_set_chunk_limits(ctx, kPngChunkBytes, kPngChunkCacheBytes);
  check_png(spng_set_png_buffer(ctx, data, size), origin);
  spng_ihdr ihdr{};
  const int rc = spng_get_ihdr(ctx, &ihdr);
  if ((rc == SPNG_EUSER_WIDTH || rc == SPNG_EUSER_HEIGHT) && size >= 24) {
    // IHDR is the first chunk: width and height follow its length and type.
    check_dimensions(big_endian32(data + 16), big_endian32(data + 20), origin);
  }
  check_png(rc, origin);
  const int64_t width = ihdr.width;
  const int64_t height = ihdr.height;
  check_dimensions(width, height, origin);

  at::Tensor ink = at::empty({height, width}, at::kByte);
  uint8_t* out = ink.data_ptr<uint8_t>();
  const auto row_bytes = static_cast<size_t>(width) * 4;
  if (ihdr.interlace_method == 0) {
    // Row by row: one RGBA row in memory, whatever the image's size.
    std::vector<uint8_t> row(row_bytes);
    check_png(spng_decode_image(ctx, nullptr, 0, SPNG_FMT_RGBA8,
                                SPNG_DECODE_TRNS | SPNG_DECODE_PROGRESSIVE),
              origin);
    for (int64_t y = 0; y < height; ++y) {
      const int r = spng_decode_row(ctx, row.data(), row.size());
      if (r != 0 && !(r == SPNG_EOI && y == height - 1)) {
        check_png(r == SPNG_EOI ? SPNG_EIDAT_TOO_SHORT : r, origin);
      }
      rgba_row_to_ink(row.data(), width, dark_ink, out + y * width);
    }
  } else {
    // Adam7 passes revisit every row: the whole RGBA image (at most 64 MiB).
    std::vector<uint8_t> image(row_bytes * static_cast<size_t>(height));
    check_png(spng_decode_image(ctx, image.data(), image.size(), SPNG_FMT_RGBA8, SPNG_DECODE_TRNS),
              origin);
    for (int64_t y = 0; y < height; ++y) {
      rgba_row_to_ink(image.data() + static_cast<size_t>(y) * row_bytes, width, dark_ink,
                      out + y * width);
    }
  }
  return ink;
}

// --- PGM (P2 plain, P5 binary) -----------------------------------------------

class PgmReader {
 public:
  PgmReader(const uint8_t* data, size_t size, const std::string& origin)
      : p_(data), end_(data + size), origin_(origin) {}

  at::Tensor read(bool dark_ink) {
    const bool plain = p_[1] == '2';
    p_ += 2;
    const int64_t width = header_number("width");
    const int64_t height = header_number("height");
    const int64_t maxval = header_number("maximum value");
    if (maxval < 1 || maxval > 65535) {
      fail(origin_, fmt::format("PGM maximum value {} is outside 1..65535", maxval));
    }
    check_dimensions(width, height, origin_);
    const int64_t n = width * height;
    at::Tensor ink = at::empty({height, width}, at::kByte);
    uint8_t* out = ink.data_ptr<uint8_t>();
    const auto emit = [&](int64_t i, int64_t value) {
      if (value > maxval) {
        fail(origin_,
             fmt::format("PGM pixel {} is {}, above the maximum value {}", i, value, maxval));
      }
      const auto gray = static_cast<uint32_t>((value * 255 + maxval / 2) / maxval);
      out[i] = ink_of(gray, 255, dark_ink);
    };
    if (plain) {
      for (int64_t i = 0; i < n; ++i) {
        skip_space();
        if (p_ == end_) {
          fail(origin_, fmt::format("the PGM file is truncated: {} of its {} pixels", i, n));
        }
        emit(i, number("pixel value"));
      }
      return ink;
    }
    // P5: exactly one whitespace byte, then 1 or 2 bytes (big-endian) a pixel.
    if (p_ == end_ || std::strchr(" \t\r\n\v\f", *p_) == nullptr || *p_ == '\0') {
      fail(origin_, "the PGM header does not end with a whitespace byte before the pixels");
    }
    ++p_;
    const int64_t bytes_per_pixel = maxval > 255 ? 2 : 1;
    const auto available = static_cast<int64_t>(end_ - p_);
    if (available < n * bytes_per_pixel) {
      fail(origin_, fmt::format("the PGM file is truncated: {} bytes of pixels, {} expected",
                                available, n * bytes_per_pixel));
    }
    for (int64_t i = 0; i < n; ++i, p_ += bytes_per_pixel) {
      emit(i, bytes_per_pixel == 2 ? (int64_t{p_[0]} << 8) | p_[1] : int64_t{p_[0]});
    }
    return ink;
  }

 private:
  void skip_space() {
    while (p_ < end_) {
      if (*p_ == '#') {  // a comment runs to the end of its line
        while (p_ < end_ && *p_ != '\n' && *p_ != '\r') {
          ++p_;
        }
      } else if (std::strchr(" \t\r\n\v\f", *p_) != nullptr && *p_ != '\0') {
        ++p_;
      } else {
        return;
      }
    }
  }

  int64_t header_number(const char* what) {
    skip_space();
    if (p_ == end_) {
      fail(origin_, fmt::format("the PGM header is truncated: no {}", what));
    }
    return number(what);
  }

  int64_t number(const char* what) {
    int64_t value = 0;
    int digits = 0;
    for (; p_ < end_ && *p_ >= '0' && *p_ <= '9'; ++p_) {
      if (++digits > 9) {
        fail(origin_, fmt::format("PGM {} has more than 9 digits", what));
      }
      value = value * 10 + (*p_ - '0');
    }
    if (digits == 0) {
      fail(origin_,
           fmt::format("PGM {} is not a number (found byte 0x{:02x})", what, p_ < end_ ? *p_ : 0));
    }
    return value;
  }

  const uint8_t* p_;
  const uint8_t* end_;
  const std::string& origin_;
};

// --- Recognising the format -----------------------------------------------

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
      {"\xFF\xD8\xFF", 3, "JPEG"}, {"GIF8", 4, "GIF"},        {"BM", 2, "BMP"},
      {"8BPS", 4, "Photoshop"},    {"II*\0", 4, "TIFF"},      {"MM\0*", 4, "TIFF"},
      {"#?RADIANCE", 10, "HDR"},   {"#?RGBE", 6, "HDR"},      {"\x53\x80\xF6\x34", 4, "PIC"},
      {"qoif", 4, "QOI"},          {"P1", 2, "PBM"},          {"P4", 2, "PBM"},
      {"P3", 2, "PPM (colour)"},   {"P6", 2, "PPM (colour)"}, {"P7", 2, "PAM"},
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

at::Tensor decode_gray_image(const uint8_t* data,
                             size_t size,
                             const std::string& origin,
                             bool dark_ink) {
  if (size == 0) {
    fail(origin, "the file is empty (expected a PNG or PGM image)");
  }
  if (starts_with(data, size, reinterpret_cast<const char*>(kPngSignature), 8)) {
    return decode_png(data, size, origin, dark_ink);
  }
  if (starts_with(data, size, "P5", 2) || starts_with(data, size, "P2", 2)) {
    return PgmReader(data, size, origin).read(dark_ink);
  }
  if (const char* name = other_format(data, size)) {
    fail(origin, fmt::format("a {} image: only PNG and PGM (P2, P5) images are read; convert it "
                             "to PNG",
                             name));
  }
  std::string first;
  for (size_t i = 0; i < std::min<size_t>(size, 8); ++i) {
    first += fmt::format("{}{:02x}", i == 0 ? "" : " ", data[i]);
  }
  fail(origin, fmt::format("not a PNG or PGM image (its first bytes are {})", first));
}

at::Tensor read_gray_image(const std::string& path, bool dark_ink) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), std::fclose);
  if (!file) {
    fail(path, std::string("cannot open the image: ") + std::strerror(errno));
  }
  struct stat st {};
  if (fstat(fileno(file.get()), &st) != 0 || !S_ISREG(st.st_mode)) {
    fail(path, "not a regular file (expected a PNG or PGM image)");
  }
  if (st.st_size > kMaxImageFileBytes) {
    fail(path, fmt::format("the file is {} bytes, more than the {} MiB an image may have here",
                           st.st_size, kMaxImageFileBytes >> 20));
  }
  std::vector<uint8_t> bytes(static_cast<size_t>(st.st_size));
  if (std::fread(bytes.data(), 1, bytes.size(), file.get()) != bytes.size()) {
    fail(path, std::string("cannot read the image: ") +
                   (std::ferror(file.get()) != 0 ? std::strerror(errno) : "it shrank while read"));
  }
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
