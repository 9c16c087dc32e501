// TEMPORARY stand-in for the img branch's decoder (gray PNG only, nearest).
#include <fstream>
#include <iterator>

#include <ATen/ATen.h>

#include "mnist/error.hpp"
#include "mnist/image.hpp"

namespace mnist {
const char* color_mode_name(ColorMode mode) { return mode == ColorMode::kRgb ? "rgb" : "grayscale"; }
std::optional<ColorMode> parse_color_mode(const std::string& t) {
  if (t == "rgb") return ColorMode::kRgb;
  if (t == "grayscale") return ColorMode::kGrayscale;
  return std::nullopt;
}
int channels_of(ColorMode mode) { return mode == ColorMode::kRgb ? 3 : 1; }
const char* interpolation_name(Interpolation i) { return i == Interpolation::kBilinear ? "bilinear" : "nearest"; }
std::optional<Interpolation> parse_interpolation(const std::string& t) {
  if (t == "bilinear") return Interpolation::kBilinear;
  if (t == "nearest") return Interpolation::kNearest;
  return std::nullopt;
}
ImageHeader read_image_header(const uint8_t* data, size_t size, const std::string& origin) {
  const at::Tensor g = decode_gray_image(data, size, origin, false);
  return {"png", g.size(0), g.size(1), 1};
}
void decode_for_dataset(const uint8_t* data, size_t size, const std::string& origin,
                        const ImageSpec& spec, uint8_t* out) {
  const at::Tensor g = decode_gray_image(data, size, origin, false).contiguous();
  const int c = channels_of(spec.color_mode);
  for (int64_t y = 0; y < spec.height; ++y)
    for (int64_t x = 0; x < spec.width; ++x)
      for (int k = 0; k < c; ++k)
        out[(y * spec.width + x) * c + k] =
            g.data_ptr<uint8_t>()[(y * g.size(0) / spec.height) * g.size(1) + x * g.size(1) / spec.width];
}
std::vector<uint8_t> read_image_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(path + ": cannot be read");
  return {std::istreambuf_iterator<char>(in), {}};
}
}  // namespace mnist
