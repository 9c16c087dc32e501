// PNG through libspng: the header bounded against the image limits before any
// pixel is decoded, then either TensorFlow's decode_png pixels (1 or 3
// channels, as its libpng transformations give them) or digit ink.
#include <spng.h>

#include <memory>
#include <new>
#include <vector>

#include <spdlog/fmt/fmt.h>

#include <ATen/ATen.h>

#include "image/codecs.hpp"

namespace mnist::image_codecs {

namespace {

/// libspng's memory for ancillary chunks (text, ICC profiles: none is used
/// here); pixel data is streamed and bounded by the image limits.
constexpr size_t kPngChunkBytes = size_t{1} << 20;
constexpr size_t kPngChunkCacheBytes = size_t{4} << 20;

/// libpng's png_set_rgb_to_gray(png, 1, 0.299, 0.587), which TF's png_io.cc
/// calls for channels=1: png_set_rgb_to_gray_fixed truncates 29900 * 32768 /
/// 100000 and 58700 * 32768 / 100000; blue gets the rest of 32768.
constexpr uint32_t kGrayRed = 9797;
constexpr uint32_t kGrayGreen = 19234;
constexpr uint32_t kGrayBlue = 32768 - kGrayRed - kGrayGreen;  // 3737

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

using SpngOwner = std::unique_ptr<spng_ctx, void (*)(spng_ctx*)>;

/// A libspng context on `data` whose header has been read and bounded.
SpngOwner open_png(const uint8_t* data, size_t size, const std::string& origin, spng_ihdr* ihdr) {
  SpngOwner owner(spng_ctx_new(0), spng_ctx_free);
  spng_ctx* ctx = owner.get();
  if (ctx == nullptr) {
    throw std::bad_alloc();
  }
  spng_set_image_limits(ctx, kMaxImageSide, kMaxImageSide);
  spng_set_chunk_limits(ctx, kPngChunkBytes, kPngChunkCacheBytes);
  check_png(spng_set_png_buffer(ctx, data, size), origin);
  const int rc = spng_get_ihdr(ctx, ihdr);
  if ((rc == SPNG_EUSER_WIDTH || rc == SPNG_EUSER_HEIGHT) && size >= 24) {
    // IHDR is the first chunk: width and height follow its length and type.
    check_dimensions(big_endian32(data + 16), big_endian32(data + 20), origin);
  }
  check_png(rc, origin);
  check_dimensions(ihdr->width, ihdr->height, origin);
  return owner;
}

/// Decodes the image as `format` (SPNG_FMT_RGBA8 or RGBA16), calling
/// row(pointer to the row's samples, y) for each row in order.
template <typename Row>
void for_each_row(spng_ctx* ctx,
                  const spng_ihdr& ihdr,
                  int format,
                  int flags,
                  const std::string& origin,
                  Row&& row) {
  const int64_t width = ihdr.width;
  const int64_t height = ihdr.height;
  const size_t row_bytes = static_cast<size_t>(width) * (format == SPNG_FMT_RGBA16 ? 8 : 4);
  if (ihdr.interlace_method == 0) {
    // Row by row: one RGBA row in memory, whatever the image's size.
    std::vector<uint8_t> buffer(row_bytes);
    check_png(spng_decode_image(ctx, nullptr, 0, format, flags | SPNG_DECODE_PROGRESSIVE), origin);
    for (int64_t y = 0; y < height; ++y) {
      const int r = spng_decode_row(ctx, buffer.data(), buffer.size());
      if (r != 0 && !(r == SPNG_EOI && y == height - 1)) {
        check_png(r == SPNG_EOI ? SPNG_EIDAT_TOO_SHORT : r, origin);
      }
      row(buffer.data(), y);
    }
  } else {
    // Adam7 passes revisit every row: the whole RGBA image (at most 128 MiB).
    std::vector<uint8_t> image(row_bytes * static_cast<size_t>(height));
    check_png(spng_decode_image(ctx, image.data(), image.size(), format, flags), origin);
    for (int64_t y = 0; y < height; ++y) {
      row(image.data() + static_cast<size_t>(y) * row_bytes, y);
    }
  }
}

/// Ink (255 = ink) of a pixel of luma `luma` and straight alpha `alpha`,
/// composited over the background: white for dark ink, black for bright ink.
uint8_t ink_of(uint32_t luma, uint32_t alpha, bool dark_ink) {
  const uint32_t background = dark_ink ? 255 : 0;
  const uint32_t gray = (luma * alpha + background * (255 - alpha) + 127) / 255;
  return static_cast<uint8_t>(dark_ink ? 255 - gray : gray);
}

}  // namespace

ImageHeader png_header(const uint8_t* data, size_t size, const std::string& origin) {
  spng_ihdr ihdr{};
  const SpngOwner owner = open_png(data, size, origin, &ihdr);
  ImageHeader header;
  header.format = "png";
  header.height = ihdr.height;
  header.width = ihdr.width;
  // Colour types 0 (gray) and 4 (gray + alpha) have no colour.
  header.channels = (ihdr.color_type == SPNG_COLOR_TYPE_GRAYSCALE ||
                     ihdr.color_type == SPNG_COLOR_TYPE_GRAYSCALE_ALPHA)
                        ? 1
                        : 3;
  return header;
}

Pixels decode_png(const uint8_t* data, size_t size, const std::string& origin, int channels) {
  spng_ihdr ihdr{};
  const SpngOwner owner = open_png(data, size, origin, &ihdr);
  Pixels pixels;
  pixels.height = ihdr.height;
  pixels.width = ihdr.width;
  pixels.channels = channels;
  pixels.data.resize(static_cast<size_t>(pixels.height * pixels.width * channels));
  const int64_t width = pixels.width;
  uint8_t* out = pixels.data.data();
  // No SPNG_DECODE_TRNS: TF strips alpha and ignores tRNS. 16-bit samples are
  // decoded as such (host order) so that colour -> gray sees all their bits.
  if (ihdr.bit_depth == 16) {
    for_each_row(owner.get(), ihdr, SPNG_FMT_RGBA16, 0, origin, [&](const uint8_t* bytes, int64_t) {
      const auto* p = reinterpret_cast<const uint16_t*>(bytes);
      for (int64_t x = 0; x < width; ++x, p += 4) {
        if (channels == 3) {
          *out++ = static_cast<uint8_t>(p[0] >> 8);
          *out++ = static_cast<uint8_t>(p[1] >> 8);
          *out++ = static_cast<uint8_t>(p[2] >> 8);
        } else {
          const uint32_t gray16 =
              (kGrayRed * p[0] + kGrayGreen * p[1] + kGrayBlue * p[2] + 16384) >> 15;
          *out++ = static_cast<uint8_t>(gray16 >> 8);
        }
      }
    });
  } else {
    for_each_row(owner.get(), ihdr, SPNG_FMT_RGBA8, 0, origin, [&](const uint8_t* p, int64_t) {
      for (int64_t x = 0; x < width; ++x, p += 4) {
        if (channels == 3) {
          *out++ = p[0];
          *out++ = p[1];
          *out++ = p[2];
        } else if (p[0] == p[1] && p[0] == p[2]) {
          *out++ = p[0];
        } else {
          *out++ =
              static_cast<uint8_t>((kGrayRed * p[0] + kGrayGreen * p[1] + kGrayBlue * p[2]) >> 15);
        }
      }
    });
  }
  return pixels;
}

at::Tensor decode_png_ink(const uint8_t* data,
                          size_t size,
                          const std::string& origin,
                          bool dark_ink) {
  spng_ihdr ihdr{};
  const SpngOwner owner = open_png(data, size, origin, &ihdr);
  const int64_t width = ihdr.width;
  at::Tensor ink = at::empty({static_cast<int64_t>(ihdr.height), width}, at::kByte);
  uint8_t* out = ink.data_ptr<uint8_t>();
  for_each_row(owner.get(), ihdr, SPNG_FMT_RGBA8, SPNG_DECODE_TRNS, origin,
               [&](const uint8_t* rgba, int64_t y) {
                 uint8_t* o = out + y * width;
                 for (int64_t x = 0; x < width; ++x, rgba += 4) {
                   // Integer ITU-R 601 luma (77, 150, 29 out of 256): exact for gray.
                   const uint32_t luma = (77U * rgba[0] + 150U * rgba[1] + 29U * rgba[2]) >> 8;
                   o[x] = ink_of(luma, rgba[3], dark_ink);
                 }
               });
  return ink;
}

}  // namespace mnist::image_codecs
