// Image decoding through stb_image (Debian's libstb) and MNIST-style
// normalisation (crop, 20x20 fit, centre of mass at the centre).
#include "mnist/image.hpp"

#include <stb_image.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include <ATen/ATen.h>

#include "mnist/error.hpp"

namespace mnist {

namespace {

constexpr double kInkThreshold = 0.2;  ///< what counts as ink when cropping
constexpr int64_t kBox = 20;           ///< MNIST fits digits into 20x20
constexpr int64_t kSide = 28;

}  // namespace

at::Tensor read_gray_image(const std::string& path, bool dark_ink) {
  int width = 0;
  int height = 0;
  int channels = 0;
  // Two channels out: luminance and alpha (255 where the file has none).
  std::unique_ptr<unsigned char, void (*)(void*)> pixels(
      stbi_load(path.c_str(), &width, &height, &channels, 2), stbi_image_free);
  if (!pixels) {
    throw DataError(path + ": cannot read the image (" + stbi_failure_reason() +
                    "); expected a PNG or PGM file");
  }
  const at::Tensor raw =
      at::from_blob(pixels.get(), {height, width, 2}, at::kByte).to(at::kFloat) / 255.0;
  const at::Tensor luminance = raw.select(2, 0);
  const at::Tensor alpha = raw.select(2, 1);
  // Composite over the background: white for dark ink, black for bright ink.
  const double background = dark_ink ? 1.0 : 0.0;
  at::Tensor gray = luminance * alpha + background * (1.0 - alpha);
  return dark_ink ? 1.0 - gray : gray;
}

at::Tensor mnist_style(const at::Tensor& ink, const std::string& origin) {
  const at::Tensor mask = ink > kInkThreshold;
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
  at::Tensor digit = ink.slice(0, top, bottom).slice(1, left, right).unsqueeze(0).unsqueeze(0);
  const int64_t h = bottom - top;
  const int64_t w = right - left;
  const double scale = static_cast<double>(kBox) / static_cast<double>(std::max(h, w));
  const int64_t nh = std::max<int64_t>(1, std::lround(static_cast<double>(h) * scale));
  const int64_t nw = std::max<int64_t>(1, std::lround(static_cast<double>(w) * scale));
  digit = (nh < h || nw < w) ? at::adaptive_avg_pool2d(digit, {nh, nw})  // area average
                             : at::upsample_bilinear2d(digit, {nh, nw}, /*align_corners=*/false);
  digit = digit.clamp(0.0, 1.0).squeeze(0).squeeze(0);

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
