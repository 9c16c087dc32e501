// Test helper: PNG files of any colour type, bit depth, palette and
// interlacing, encoded with libspng from samples given at the PNG's own bit
// depth, for the decoder's tests, the fixtures and the fuzz seed corpus.
#pragma once

#include <spng.h>
#include <zlib.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace mnist::test {

struct PngImage {
  uint32_t width = 0;
  uint32_t height = 0;
  uint8_t color_type = 0;  ///< 0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA
  uint8_t bit_depth = 8;
  bool interlaced = false;
  /// width * height * channels samples at bit_depth, row-major (palette
  /// images: one index a pixel).
  std::vector<uint16_t> samples;
  std::vector<std::array<uint8_t, 3>> palette;
  std::vector<uint8_t> palette_alpha;  ///< tRNS of a palette image
  std::optional<uint16_t> gray_key;    ///< tRNS of a gray image: this value is transparent

  int channels() const {
    switch (color_type) {
      case 2:
        return 3;
      case 4:
        return 2;
      case 6:
        return 4;
      default:
        return 1;
    }
  }
};

/// The rows of `img` as SPNG_FMT_PNG wants them: packed MSB first below 8
/// bits, one byte at 8, host-endian uint16 at 16.
inline std::vector<uint8_t> png_rows(const PngImage& img) {
  const size_t per_row = img.width * static_cast<size_t>(img.channels());
  const size_t row_bytes = (per_row * img.bit_depth + 7) / 8;
  std::vector<uint8_t> out(row_bytes * img.height, 0);
  for (size_t y = 0; y < img.height; ++y) {
    uint8_t* row = out.data() + y * row_bytes;
    for (size_t i = 0; i < per_row; ++i) {
      const uint16_t v = img.samples[y * per_row + i];
      if (img.bit_depth == 16) {
        std::memcpy(row + 2 * i, &v, 2);
      } else if (img.bit_depth == 8) {
        row[i] = static_cast<uint8_t>(v);
      } else {
        const size_t bit = i * img.bit_depth;
        row[bit / 8] |= static_cast<uint8_t>(v << (8 - img.bit_depth - bit % 8));
      }
    }
  }
  return out;
}

inline std::vector<uint8_t> encode_png(const PngImage& img) {
  std::unique_ptr<spng_ctx, void (*)(spng_ctx*)> owner(spng_ctx_new(SPNG_CTX_ENCODER),
                                                       spng_ctx_free);
  spng_ctx* ctx = owner.get();
  spng_ihdr ihdr{img.width,
                 img.height,
                 img.bit_depth,
                 img.color_type,
                 0,
                 0,
                 static_cast<uint8_t>(img.interlaced ? 1 : 0)};
  int rc = spng_set_option(ctx, SPNG_ENCODE_TO_BUFFER, 1);
  rc = rc != 0 ? rc : spng_set_ihdr(ctx, &ihdr);
  if (rc == 0 && !img.palette.empty()) {
    spng_plte plte{};
    plte.n_entries = static_cast<uint32_t>(img.palette.size());
    for (size_t i = 0; i < img.palette.size(); ++i) {
      plte.entries[i] = {img.palette[i][0], img.palette[i][1], img.palette[i][2], 255};
    }
    rc = spng_set_plte(ctx, &plte);
  }
  if (rc == 0 && (!img.palette_alpha.empty() || img.gray_key)) {
    spng_trns trns{};
    trns.gray = img.gray_key.value_or(0);
    trns.n_type3_entries = static_cast<uint32_t>(img.palette_alpha.size());
    std::copy(img.palette_alpha.begin(), img.palette_alpha.end(), trns.type3_alpha);
    rc = spng_set_trns(ctx, &trns);
  }
  const std::vector<uint8_t> rows = png_rows(img);
  rc = rc != 0
           ? rc
           : spng_encode_image(ctx, rows.data(), rows.size(), SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE);
  if (rc != 0) {
    throw std::runtime_error(std::string("encode_png: ") + spng_strerror(rc));
  }
  size_t size = 0;
  std::unique_ptr<uint8_t, void (*)(void*)> png(
      static_cast<uint8_t*>(spng_get_png_buffer(ctx, &size, &rc)), std::free);
  if (!png) {
    throw std::runtime_error(std::string("encode_png: ") + spng_strerror(rc));
  }
  return {png.get(), png.get() + size};
}

/// An 8-bit gray PNG of `gray` (row-major bytes, width x height).
inline std::vector<uint8_t> gray_png(uint32_t width,
                                     uint32_t height,
                                     const uint8_t* gray,
                                     bool interlaced = false) {
  PngImage img;
  img.width = width;
  img.height = height;
  img.interlaced = interlaced;
  img.samples.assign(gray, gray + static_cast<size_t>(width) * height);
  return encode_png(img);
}

struct PngKind {
  const char* name;
  uint8_t color_type;
  uint8_t bit_depth;
  bool interlaced;
  bool transparency;  ///< tRNS (palette alphas, or a gray key)
};

// A 13x9 image (odd sides: row padding, Adam7's partial blocks) of each kind,
// with the luma and alpha every pixel must decode to.
struct PngSample {
  PngImage png;
  std::vector<int> luma;
  std::vector<int> alpha;
};

inline PngSample make_png_sample(const PngKind& k) {
  PngSample s;
  PngImage& img = s.png;
  img.width = 13;
  img.height = 9;
  img.color_type = k.color_type;
  img.bit_depth = k.bit_depth;
  img.interlaced = k.interlaced;
  const int levels = (1 << k.bit_depth) - 1;
  if (k.color_type == 3) {
    for (int i = 0; i <= levels; ++i) {
      const auto g = static_cast<uint8_t>(i * 255 / levels);
      img.palette.push_back({g, g, g});
      if (k.transparency) {
        img.palette_alpha.push_back(static_cast<uint8_t>((i * 97) % 256));
      }
    }
  }
  if (k.color_type == 0 && k.transparency) {
    img.gray_key = 0;
  }
  for (uint32_t y = 0; y < img.height; ++y) {
    for (uint32_t x = 0; x < img.width; ++x) {
      const int v = static_cast<int>((x * 37 + y * 91) % 256);
      const int a = static_cast<int>((x * 53 + y * 17 + 11) % 256);
      const auto at_depth = [&](int v8) {
        return static_cast<uint16_t>(k.bit_depth == 16 ? v8 * 257 : v8 >> (8 - k.bit_depth));
      };
      const auto back = [&](int v8) {  // what an 8-bit decode of at_depth(v8) gives
        return k.bit_depth >= 8 ? v8 : (v8 >> (8 - k.bit_depth)) * 255 / levels;
      };
      switch (k.color_type) {
        case 0:
          img.samples.push_back(at_depth(v));
          s.luma.push_back(back(v));
          s.alpha.push_back(k.transparency && at_depth(v) == 0 ? 0 : 255);
          break;
        case 3: {
          const int index = v >> (8 - k.bit_depth);
          img.samples.push_back(static_cast<uint16_t>(index));
          s.luma.push_back(img.palette[index][0]);
          s.alpha.push_back(k.transparency ? img.palette_alpha[index] : 255);
          break;
        }
        case 4:
          img.samples.insert(img.samples.end(), {at_depth(v), at_depth(a)});
          s.luma.push_back(v);
          s.alpha.push_back(a);
          break;
        default: {  // RGB, RGBA: three different channels
          const int r = v;
          const int g = (v + 50) % 256;
          const int b = (v * 3) % 256;
          img.samples.insert(img.samples.end(), {at_depth(r), at_depth(g), at_depth(b)});
          if (k.color_type == 6) {
            img.samples.push_back(at_depth(a));
          }
          s.luma.push_back((77 * r + 150 * g + 29 * b) >> 8);
          s.alpha.push_back(k.color_type == 6 ? a : 255);
        }
      }
    }
  }
  return s;
}

inline const PngKind kPngKinds[] = {
    {"gray1", 0, 1, false, false},
    {"gray2", 0, 2, false, false},
    {"gray4", 0, 4, false, false},
    {"gray8", 0, 8, false, false},
    {"gray16", 0, 16, false, false},
    {"gray8_key", 0, 8, false, true},
    {"gray_alpha8", 4, 8, false, false},
    {"gray_alpha16", 4, 16, false, false},
    {"rgb8", 2, 8, false, false},
    {"rgb16", 2, 16, false, false},
    {"rgba8", 6, 8, false, false},
    {"rgba16", 6, 16, false, false},
    {"palette1", 3, 1, false, false},
    {"palette2", 3, 2, false, true},
    {"palette4", 3, 4, false, true},
    {"palette8", 3, 8, false, true},
    {"gray8_interlaced", 0, 8, true, false},
    {"rgba16_interlaced", 6, 16, true, false},
    {"palette4_interlaced", 3, 4, true, true},
    {"gray2_interlaced", 0, 2, true, false},
};

// `png` with IHDR's width and height replaced (and its CRC made right again).
inline std::vector<uint8_t> claim_size(std::vector<uint8_t> png, uint32_t width, uint32_t height) {
  for (int i = 0; i < 4; ++i) {
    png[16 + i] = static_cast<uint8_t>(width >> (24 - 8 * i));
    png[20 + i] = static_cast<uint8_t>(height >> (24 - 8 * i));
  }
  const uLong crc = crc32(0, png.data() + 12, 17);  // chunk type + 13 bytes of IHDR
  for (int i = 0; i < 4; ++i) {
    png[29 + i] = static_cast<uint8_t>(crc >> (24 - 8 * i));
  }
  return png;
}

}  // namespace mnist::test
