// PGM (P2 plain, P5 binary) by a bounded reader of our own: the header's
// size is checked before any pixel is read, every sample against the maximum
// value. Neither TensorFlow nor Keras reads PGM; samples are scaled to 0..255.
#include <cstring>

#include <spdlog/fmt/fmt.h>

#include "image/codecs.hpp"

namespace mnist::image_codecs {

namespace {

class PgmReader {
 public:
  PgmReader(const uint8_t* data, size_t size, const std::string& origin)
      : p_(data), end_(data + size), origin_(origin) {}

  ImageHeader header() {
    plain_ = p_[1] == '2';
    p_ += 2;
    width_ = header_number("width");
    height_ = header_number("height");
    maxval_ = header_number("maximum value");
    if (maxval_ < 1 || maxval_ > 65535) {
      fail(origin_, fmt::format("PGM maximum value {} is outside 1..65535", maxval_));
    }
    check_dimensions(width_, height_, origin_);
    ImageHeader h;
    h.format = "pgm";
    h.height = height_;
    h.width = width_;
    h.channels = 1;
    return h;
  }

  Pixels read() {
    header();
    const int64_t n = width_ * height_;
    Pixels pixels;
    pixels.height = height_;
    pixels.width = width_;
    pixels.channels = 1;
    pixels.data.resize(static_cast<size_t>(n));
    uint8_t* out = pixels.data.data();
    const auto emit = [&](int64_t i, int64_t value) {
      if (value > maxval_) {
        fail(origin_,
             fmt::format("PGM pixel {} is {}, above the maximum value {}", i, value, maxval_));
      }
      out[i] = static_cast<uint8_t>((value * 255 + maxval_ / 2) / maxval_);
    };
    if (plain_) {
      for (int64_t i = 0; i < n; ++i) {
        skip_space();
        if (p_ == end_) {
          fail(origin_, fmt::format("the PGM file is truncated: {} of its {} pixels", i, n));
        }
        emit(i, number("pixel value"));
      }
      return pixels;
    }
    // P5: exactly one whitespace byte, then 1 or 2 bytes (big-endian) a pixel.
    if (p_ == end_ || std::strchr(" \t\r\n\v\f", *p_) == nullptr || *p_ == '\0') {
      fail(origin_, "the PGM header does not end with a whitespace byte before the pixels");
    }
    ++p_;
    const int64_t bytes_per_pixel = maxval_ > 255 ? 2 : 1;
    const auto available = static_cast<int64_t>(end_ - p_);
    if (available < n * bytes_per_pixel) {
      fail(origin_, fmt::format("the PGM file is truncated: {} bytes of pixels, {} expected",
                                available, n * bytes_per_pixel));
    }
    for (int64_t i = 0; i < n; ++i, p_ += bytes_per_pixel) {
      emit(i, bytes_per_pixel == 2 ? (int64_t{p_[0]} << 8) | p_[1] : int64_t{p_[0]});
    }
    return pixels;
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
  bool plain_ = false;
  int64_t width_ = 0;
  int64_t height_ = 0;
  int64_t maxval_ = 0;
};

}  // namespace

ImageHeader pgm_header(const uint8_t* data, size_t size, const std::string& origin) {
  return PgmReader(data, size, origin).header();
}

Pixels decode_pgm(const uint8_t* data, size_t size, const std::string& origin) {
  return PgmReader(data, size, origin).read();
}

}  // namespace mnist::image_codecs
