// libFuzzer harness: image decoding on arbitrary bytes (PNG through libspng,
// JPEG through TurboJPEG, PGM through our reader): the header alone, digit ink
// with both polarities then MNIST-style normalisation, and dataset records for
// a few specs (gray and RGB, both interpolations, with and without Keras's
// crop). Anything but a clean result or mnist::Error (a crash, a sanitizer
// report, another exception, a huge allocation) is a finding.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include <ATen/ATen.h>

#include "mnist/error.hpp"
#include "mnist/image.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::optional<mnist::ImageHeader> header;
  try {
    header = mnist::read_image_header(data, size, "input");
    if (header->height < 1 || header->width < 1 ||
        header->height * header->width > mnist::kMaxImagePixels ||
        (header->channels != 1 && header->channels != 3)) {
      __builtin_trap();  // the header promised a bounded image of 1 or 3 channels
    }
  } catch (const mnist::Error&) {
  }
  for (const bool dark_ink : {false, true}) {
    try {
      const at::Tensor ink = mnist::decode_gray_image(data, size, "input", dark_ink);
      if (ink.dim() != 2 || ink.scalar_type() != at::kByte ||
          ink.numel() > mnist::kMaxImagePixels || !header || ink.size(0) != header->height ||
          ink.size(1) != header->width) {
        __builtin_trap();  // bounded [H,W] uint8, of the size its header says
      }
      const at::Tensor digit = mnist::mnist_style(ink, "input");
      if (digit.sizes() != at::IntArrayRef{1, 1, 28, 28} || !digit.isfinite().all().item<bool>() ||
          digit.min().item<float>() < 0.0F || digit.max().item<float>() > 1.0F) {
        __builtin_trap();  // MNIST-style: [1,1,28,28] in [0,1]
      }
    } catch (const mnist::Error&) {
    }
  }
  using mnist::ColorMode;
  using mnist::Interpolation;
  static const mnist::ImageSpec kSpecs[] = {
      {28, 28, ColorMode::kGrayscale, Interpolation::kBilinear, false},
      {17, 9, ColorMode::kRgb, Interpolation::kNearest, true},
      {5, 40, ColorMode::kRgb, Interpolation::kBilinear, true},
  };
  for (const mnist::ImageSpec& spec : kSpecs) {
    const size_t n =
        static_cast<size_t>(spec.height * spec.width * mnist::channels_of(spec.color_mode));
    std::vector<uint8_t> out(n + 1, 0xA5);  // one guard byte past the record
    try {
      mnist::decode_for_dataset(data, size, "input", spec, out.data());
      if (!header) {
        __builtin_trap();  // decoded a file whose header was refused
      }
    } catch (const mnist::Error&) {
    }
    if (out[n] != 0xA5) {
      __builtin_trap();  // wrote past the record
    }
  }
  return 0;
}
