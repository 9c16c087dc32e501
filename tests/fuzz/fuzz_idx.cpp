// libFuzzer harness: the IDX reader (raw or gzip) on arbitrary bytes, read
// both as an images file and as a labels file. Anything but a clean result
// or mnist::Error (a crash, a sanitizer report, another exception, a huge
// allocation) is a finding.
#include <cstddef>
#include <cstdint>

#include <ATen/ATen.h>

#include "mnist/error.hpp"
#include "mnist/idx.hpp"
#include "test_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = mnist::test::process_temp_dir().path().string() + "/input.idx";
  mnist::test::write_bytes(path, data, size);
  try {
    const at::Tensor images = mnist::read_idx_images(path);
    if (images.dim() != 4 || images.size(1) != 1 || images.size(2) != mnist::kImageSide ||
        images.size(3) != mnist::kImageSide) {
      __builtin_trap();  // the reader promised [N,1,28,28]
    }
  } catch (const mnist::Error&) {
  }
  try {
    const at::Tensor labels = mnist::read_idx_labels(path);
    if (labels.dim() != 1 || (labels.numel() > 0 && (labels.min().item<int64_t>() < 0 ||
                                                     labels.max().item<int64_t>() > 9))) {
      __builtin_trap();  // labels must be 0..9
    }
  } catch (const mnist::Error&) {
  }
  return 0;
}
