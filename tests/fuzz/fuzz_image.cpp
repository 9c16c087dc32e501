// libFuzzer harness: image decoding (PNG through libspng, PGM through our
// reader) and MNIST-style normalisation on arbitrary bytes, with both ink
// polarities. Anything but a clean result or mnist::Error (a crash, a
// sanitizer report, another exception, a huge allocation) is a finding.
#include <cstddef>
#include <cstdint>

#include <ATen/ATen.h>

#include "mnist/error.hpp"
#include "mnist/image.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  for (const bool dark_ink : {false, true}) {
    try {
      const at::Tensor ink = mnist::decode_gray_image(data, size, "input", dark_ink);
      if (ink.dim() != 2 || ink.scalar_type() != at::kByte ||
          ink.numel() > mnist::kMaxImagePixels) {
        __builtin_trap();  // the decoder promised bounded [H,W] uint8
      }
      const at::Tensor digit = mnist::mnist_style(ink, "input");
      if (digit.sizes() != at::IntArrayRef{1, 1, 28, 28} || !digit.isfinite().all().item<bool>() ||
          digit.min().item<float>() < 0.0F || digit.max().item<float>() > 1.0F) {
        __builtin_trap();  // MNIST-style: [1,1,28,28] in [0,1]
      }
    } catch (const mnist::Error&) {
    }
  }
  return 0;
}
