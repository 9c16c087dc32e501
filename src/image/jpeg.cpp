// JPEG through libjpeg-turbo's TurboJPEG API, as TensorFlow's decode_jpeg
// (tensorflow/core/lib/jpeg/jpeg_mem.cc) decodes for decode_image: the fast
// integer IDCT, fancy upsampling, gray or RGB output, CMYK converted by TF's
// formula. The header is bounded against the image limits before decoding,
// and every libjpeg warning (truncated data, corrupt entropy data) fails the
// file instead of leaving gray pixels in it.
#include <turbojpeg.h>

#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include <spdlog/fmt/fmt.h>

#include "image/codecs.hpp"

namespace mnist::image_codecs {

namespace {

/// TF's decode_image uses JDCT_IFAST (TJFLAG_FASTDCT) and libjpeg's default
/// fancy upsampling (no TJFLAG_FASTUPSAMPLE). A warning stops the decoding
/// (TF accepts no missing line), and a progressive file may have at most 500
/// scans (a file of millions of tiny scans costs minutes otherwise).
constexpr int kDecodeFlags = TJFLAG_FASTDCT | TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS;

struct Handle {
  Handle() : handle(tjInitDecompress()) {
    if (handle == nullptr) {
      throw std::bad_alloc();  // TurboJPEG fails here only when out of memory
    }
  }
  ~Handle() { tjDestroy(handle); }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  tjhandle handle;
};

/// This thread's decompressor, kept for its next file: making one per file
/// (its libjpeg memory pools and tables) costs as much as decoding a small
/// image. TurboJPEG resets a handle's warning and error state at each call,
/// and a finished or failed decompression is aborted, except that 2.1's
/// header reader leaves the decompressor inside the header it failed on:
/// the next file would be read from there ("Bogus Huffman table"). So a
/// handle that saw any failure is dropped (`with_handle`).
std::unique_ptr<Handle>& thread_slot() {
  thread_local std::unique_ptr<Handle> slot;
  return slot;
}

template <typename F>
auto with_handle(F&& f) {
  std::unique_ptr<Handle>& slot = thread_slot();
  if (!slot) {
    slot = std::make_unique<Handle>();
  }
  try {
    return f(*slot);
  } catch (...) {
    slot.reset();
    throw;
  }
}

[[noreturn]] void fail_jpeg(const Handle& h, const std::string& origin) {
  const std::string why = tjGetErrorStr2(h.handle);
  if (tjGetErrorCode(h.handle) == TJERR_WARNING) {
    fail(origin, "the JPEG file is truncated or damaged (libjpeg: " + why + ")");
  }
  fail(origin, "not a valid JPEG file (libjpeg: " + why + ")");
}

struct JpegInfo {
  int width = 0;
  int height = 0;
  int colorspace = 0;
};

JpegInfo read_info(const Handle& h, const uint8_t* data, size_t size, const std::string& origin) {
  JpegInfo info;
  int subsampling = 0;
  if (tjDecompressHeader3(h.handle, data, static_cast<unsigned long>(size), &info.width,
                          &info.height, &subsampling, &info.colorspace) != 0) {
    fail_jpeg(h, origin);
  }
  if (info.width <= 0 || info.height <= 0) {
    // TurboJPEG's header reader takes the end of the data for an end marker
    // (a warning it does not report) and gives no size.
    fail(origin,
         "the JPEG file is truncated or damaged (it ends before its frame header "
         "gives the image's size)");
  }
  check_dimensions(info.width, info.height, origin);
  return info;
}

/// Whether the markers before the first scan include Adobe's APP14 (at least
/// 12 bytes of data starting with "Adobe"): what libjpeg records as
/// saw_Adobe_marker, and TF reads to tell inverted CMYK (Photoshop's) from
/// plain CMYK.
bool has_adobe_marker(const uint8_t* data, size_t size) {
  size_t i = 2;  // after SOI
  while (i + 4 <= size) {
    if (data[i] != 0xFF) {
      return false;
    }
    const uint8_t marker = data[i + 1];
    if (marker == 0xFF) {  // fill byte
      ++i;
      continue;
    }
    if (marker == 0xDA || marker == 0xD9) {  // SOS, EOI: no more header markers
      return false;
    }
    if ((marker >= 0xD0 && marker <= 0xD7) || marker == 0x01) {  // no length
      i += 2;
      continue;
    }
    const size_t length = (size_t{data[i + 2]} << 8) | data[i + 3];
    if (length < 2) {
      return false;
    }
    if (marker == 0xEE && length - 2 >= 12 && i + 9 <= size &&
        std::memcmp(data + i + 4, "Adobe", 5) == 0) {
      return true;
    }
    i += 2 + length;
  }
  return false;
}

/// decode_jpeg with handle `h`.
Pixels decode_with(
    const Handle& h, const uint8_t* data, size_t size, const std::string& origin, int channels) {
  const JpegInfo info = read_info(h, data, size, origin);
  Pixels pixels;
  pixels.height = info.height;
  pixels.width = info.width;
  pixels.channels = channels;
  const auto n = static_cast<size_t>(pixels.height * pixels.width);
  const auto length = static_cast<unsigned long>(size);
  if (info.colorspace == TJCS_CMYK || info.colorspace == TJCS_YCCK) {
    if (channels == 1) {
      // libjpeg has no CMYK -> gray conversion: TF's decode fails the same way.
      fail(origin,
           "a CMYK JPEG cannot be read as grayscale (TensorFlow refuses it too): "
           "read it as rgb or convert it to an RGB or gray JPEG");
    }
    // libjpeg's CMYK output (YCCK converted), then TF's formula: with Adobe's
    // marker the inks are stored inverted, so R = K * C / 255; otherwise
    // R = (255 - K) * (255 - C) / 255 (integers, truncated).
    std::vector<uint8_t> cmyk(n * 4);
    if (tjDecompress2(h.handle, data, length, cmyk.data(), info.width, 0, info.height, TJPF_CMYK,
                      kDecodeFlags) != 0) {
      fail_jpeg(h, origin);
    }
    const bool adobe = has_adobe_marker(data, size);
    pixels.data.resize(n * 3);
    for (size_t i = 0; i < n; ++i) {
      const int k = cmyk[4 * i + 3];
      for (int c = 0; c < 3; ++c) {
        const int ink = cmyk[4 * i + static_cast<size_t>(c)];
        pixels.data[3 * i + static_cast<size_t>(c)] =
            static_cast<uint8_t>(adobe ? k * ink / 255 : (255 - k) * (255 - ink) / 255);
      }
    }
    return pixels;
  }
  // Gray output of a colour JPEG is libjpeg's Y plane; RGB output of a gray
  // JPEG replicates it: both as TF's JCS_GRAYSCALE / JCS_RGB output.
  pixels.data.resize(n * static_cast<size_t>(channels));
  if (tjDecompress2(h.handle, data, length, pixels.data.data(), info.width, 0, info.height,
                    channels == 1 ? TJPF_GRAY : TJPF_RGB, kDecodeFlags) != 0) {
    fail_jpeg(h, origin);
  }
  return pixels;
}

}  // namespace

ImageHeader jpeg_header(const uint8_t* data, size_t size, const std::string& origin) {
  const JpegInfo info =
      with_handle([&](const Handle& h) { return read_info(h, data, size, origin); });
  ImageHeader header;
  header.format = "jpeg";
  header.height = info.height;
  header.width = info.width;
  header.channels = info.colorspace == TJCS_GRAY ? 1 : 3;
  return header;
}

Pixels decode_jpeg(const uint8_t* data, size_t size, const std::string& origin, int channels) {
  return with_handle([&](const Handle& h) { return decode_with(h, data, size, origin, channels); });
}

}  // namespace mnist::image_codecs
