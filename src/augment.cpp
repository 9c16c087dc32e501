// Keras 3's random image preprocessing layers on CPU (augment.hpp): the spec
// and its canonical text, the counter-based draws, each layer's transform as
// Keras computes it (the geometric ones through TF's projective transform,
// resampled as TF.js's CPU kernel does), and the pipeline that prepares
// batches on worker threads. docs/data.md, "Augmentation".
#include "mnist/augment.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <utility>

#include <ATen/ATen.h>
#include <spdlog/fmt/fmt.h>

#include "mnist/error.hpp"

namespace mnist {

namespace {

constexpr double kPi = 3.14159265358979323846;

// --- the spec ---

const char* flip_name(FlipMode m) {
  switch (m) {
    case FlipMode::kHorizontal:
      return "horizontal";
    case FlipMode::kVertical:
      return "vertical";
    case FlipMode::kHorizontalAndVertical:
      return "horizontal_and_vertical";
    case FlipMode::kNone:
      break;
  }
  return "";
}

const char* fill_name(FillMode m) {
  switch (m) {
    case FillMode::kReflect:
      return "reflect";
    case FillMode::kWrap:
      return "wrap";
    case FillMode::kConstant:
      return "constant";
    case FillMode::kNearest:
      return "nearest";
  }
  return "";
}

ConfigError bad_spec(const std::string& part, const std::string& why) {
  return ConfigError("augmentation \"" + part + "\": " + why);
}

/// A whole finite number, or a ConfigError naming `part`.
double parse_number(const std::string& text, const std::string& part) {
  const char* begin = text.c_str();
  char* end = nullptr;
  const double v = text.empty() ? 0.0 : std::strtod(begin, &end);
  if (text.empty() || end != begin + text.size() || !std::isfinite(v)) {
    throw bad_spec(part, "\"" + text + "\" is not a number");
  }
  return v;
}

/// Keras's factor: "f" (a number) or "lo:hi" (its tuple).
struct RawFactor {
  bool pair = false;
  double a = 0;
  double b = 0;
};

RawFactor parse_factor(const std::string& value, const std::string& part) {
  const size_t colon = value.find(':');
  if (colon == std::string::npos) {
    return {false, parse_number(value, part), 0};
  }
  return {true, parse_number(value.substr(0, colon), part),
          parse_number(value.substr(colon + 1), part)};
}

/// BaseImagePreprocessingLayer._set_factor with _FACTOR_BOUNDS (lo, hi)
/// (RandomRotation, RandomBrightness: (-1, 1); RandomContrast: (0, 1)): a
/// number must lie in the bounds and gives (max(-|f|, lo), |f|); a pair is
/// refused only when its first is above hi or its second below lo, and is
/// sorted.
FactorRange base_factor(const RawFactor& f, double lo, double hi, const std::string& part) {
  const std::string allowed = fmt::format(
      "a number in [{}, {}] or a pair lo:hi with lo <= {} and hi >= {} (Keras's)", lo, hi, hi, lo);
  if (f.pair) {
    if (f.a > hi || f.b < lo) {
      throw bad_spec(part, "out of range: expected " + allowed);
    }
    return {std::min(f.a, f.b), std::max(f.a, f.b)};
  }
  if (f.a < lo || f.a > hi) {
    throw bad_spec(part, "out of range: expected " + allowed);
  }
  const double m = std::abs(f.a);
  return {std::max(-m, lo), m};
}

/// RandomZoom's and RandomTranslation's own _set_factor: every number in
/// [-1, 1]; a number f gives (-|f|, |f|), a pair is sorted.
FactorRange signed_factor(const RawFactor& f, const std::string& part) {
  const auto check = [&](double v) {
    if (v < -1.0 || v > 1.0) {
      throw bad_spec(part,
                     "out of range: expected numbers in [-1, 1] (a number f or a pair lo:hi)");
    }
  };
  check(f.a);
  if (f.pair) {
    check(f.b);
    return {std::min(f.a, f.b), std::max(f.a, f.b)};
  }
  return {-std::abs(f.a), std::abs(f.a)};
}

std::string range_text(const FactorRange& r) {
  if (r.lower == -r.upper && r.upper >= 0) {
    return fmt::format("{}", r.upper);
  }
  return fmt::format("{}:{}", r.lower, r.upper);
}

constexpr const char* kKeys =
    "flip, rotation, zoom, zoom_width, translation, translation_height, translation_width, "
    "contrast, brightness, fill_mode, fill_value, interpolation (or \"default\")";

// --- the draws: SplitMix64 (Steele, Lea and Flood), keyed by a hash of the
// seed and the slot's coordinates ---

uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

class SlotRandom {
 public:
  SlotRandom(uint64_t seed, int64_t epoch, int64_t batch, int64_t slot) {
    uint64_t h = mix(seed ^ 0x6175676d656e7421ULL);  // "augment!": its own stream
    for (const int64_t v : {epoch, batch, slot}) {
      h = mix(h + 0x9e3779b97f4a7c15ULL + static_cast<uint64_t>(v));
    }
    state_ = h;
  }
  /// Uniform in [0, 1), 53 bits.
  double uniform() {
    state_ += 0x9e3779b97f4a7c15ULL;
    return static_cast<double>(mix(state_) >> 11) * 0x1.0p-53;
  }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }

 private:
  uint64_t state_;
};

// --- resampling as TF.js's CPU Transform kernel (tfjs-backend-cpu
// kernels/Transform.ts, after TF's image_ops.h): coordinates in double ---

double clamp(double v, double lo, double hi) { return std::max(lo, std::min(v, hi)); }

double map_reflect(double in, int64_t len) {
  const double n = static_cast<double>(len);
  if (in < 0) {
    if (len <= 1) {
      in = 0;
    } else {
      const double sz2 = 2 * n;
      if (in < sz2) {
        in = sz2 * std::trunc(-in / sz2) + in;
      }
      in = in < -n ? in + sz2 : -in - 1;
    }
  } else if (in > n - 1) {
    if (len <= 1) {
      in = 0;
    } else {
      const double sz2 = 2 * n;
      in -= sz2 * std::trunc(in / sz2);
      if (in >= n) {
        in = sz2 - in - 1;
      }
    }
  }
  return clamp(in, 0, n - 1);
}

double map_wrap(double in, int64_t len) {
  const double n = static_cast<double>(len);
  if (in < 0) {
    if (len <= 1) {
      in = 0;
    } else {
      const double sz = n - 1;
      in += n * (std::trunc(-in / sz) + 1);
    }
  } else if (in > n - 1) {
    if (len <= 1) {
      in = 0;
    } else {
      const double sz = n - 1;
      in -= n * std::trunc(in / sz);
    }
  }
  return clamp(in, 0, n - 1);
}

double map_coord(double in, int64_t len, FillMode fill) {
  switch (fill) {
    case FillMode::kReflect:
      return map_reflect(in, len);
    case FillMode::kWrap:
      return map_wrap(in, len);
    case FillMode::kNearest:
      return clamp(in, 0, static_cast<double>(len) - 1);
    case FillMode::kConstant:
      break;
  }
  return in;
}

}  // namespace

bool AugmentSpec::enabled() const {
  return flip != FlipMode::kNone || rotation || zoom_height || translation_height ||
         translation_width || contrast || brightness;
}

AugmentSpec parse_augment_spec(const std::string& text) {
  AugmentSpec s;
  std::vector<std::string> seen;
  std::vector<std::string> items;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    items.push_back(
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) {
      break;
    }
    start = comma + 1;
  }
  // "default": TensorFlow's image classification tutorial's augmentation
  // (docs/data.md); later items may add to it.
  if (!items.empty() && items.front() == "default") {
    items.erase(items.begin());
    items.insert(items.begin(), {"flip=horizontal", "rotation=0.1", "zoom=0.1"});
  }
  for (const std::string& item : items) {
    const size_t eq = item.find('=');
    if (item.empty() || eq == std::string::npos || eq == 0) {
      throw bad_spec(item, "expected key=value, keys: " + std::string(kKeys));
    }
    const std::string key = item.substr(0, eq);
    const std::string value = item.substr(eq + 1);
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
      throw bad_spec(item, key + " is given twice");
    }
    seen.push_back(key);
    if (key == "flip") {
      if (value == "horizontal") {
        s.flip = FlipMode::kHorizontal;
      } else if (value == "vertical") {
        s.flip = FlipMode::kVertical;
      } else if (value == "horizontal_and_vertical") {
        s.flip = FlipMode::kHorizontalAndVertical;
      } else {
        throw bad_spec(item, "flip must be horizontal, vertical or horizontal_and_vertical");
      }
    } else if (key == "rotation") {
      s.rotation = base_factor(parse_factor(value, item), -1, 1, item);
    } else if (key == "zoom") {
      s.zoom_height = signed_factor(parse_factor(value, item), item);
    } else if (key == "zoom_width") {
      s.zoom_width = signed_factor(parse_factor(value, item), item);
    } else if (key == "translation") {
      s.translation_height = signed_factor(parse_factor(value, item), item);
      s.translation_width = s.translation_height;
    } else if (key == "translation_height") {
      s.translation_height = signed_factor(parse_factor(value, item), item);
    } else if (key == "translation_width") {
      s.translation_width = signed_factor(parse_factor(value, item), item);
    } else if (key == "contrast") {
      s.contrast = base_factor(parse_factor(value, item), 0, 1, item);
    } else if (key == "brightness") {
      s.brightness = base_factor(parse_factor(value, item), -1, 1, item);
    } else if (key == "fill_mode") {
      if (value == "reflect") {
        s.fill_mode = FillMode::kReflect;
      } else if (value == "wrap") {
        s.fill_mode = FillMode::kWrap;
      } else if (value == "constant") {
        s.fill_mode = FillMode::kConstant;
      } else if (value == "nearest") {
        s.fill_mode = FillMode::kNearest;
      } else {
        throw bad_spec(item, "fill_mode must be reflect, wrap, constant or nearest");
      }
    } else if (key == "fill_value") {
      s.fill_value = parse_number(value, item);
    } else if (key == "interpolation") {
      if (value == "bilinear") {
        s.interpolation = AffineInterpolation::kBilinear;
      } else if (value == "nearest") {
        s.interpolation = AffineInterpolation::kNearest;
      } else {
        throw bad_spec(item, "interpolation must be bilinear or nearest");
      }
    } else {
      throw bad_spec(item, "unknown key \"" + key + "\"; keys: " + kKeys);
    }
  }
  if (s.zoom_width && !s.zoom_height) {
    throw bad_spec("zoom_width", "needs zoom (RandomZoom's height_factor) as well");
  }
  if (!s.enabled()) {
    throw bad_spec(text,
                   "names no transform; give at least one of flip, rotation, zoom, "
                   "translation, contrast, brightness");
  }
  return s;
}

std::string augment_spec_text(const AugmentSpec& s) {
  std::vector<std::string> parts;
  if (s.flip != FlipMode::kNone) {
    parts.push_back(std::string("flip=") + flip_name(s.flip));
  }
  if (s.rotation) {
    parts.push_back("rotation=" + range_text(*s.rotation));
  }
  if (s.zoom_height) {
    parts.push_back("zoom=" + range_text(*s.zoom_height));
    if (s.zoom_width) {
      parts.push_back("zoom_width=" + range_text(*s.zoom_width));
    }
  }
  if (s.translation_height || s.translation_width) {
    const FactorRange h = s.translation_height.value_or(FactorRange{});
    const FactorRange w = s.translation_width.value_or(FactorRange{});
    if (h == w) {
      parts.push_back("translation=" + range_text(h));
    } else {
      parts.push_back("translation_height=" + range_text(h));
      parts.push_back("translation_width=" + range_text(w));
    }
  }
  if (s.contrast) {
    parts.push_back("contrast=" + range_text(*s.contrast));
  }
  if (s.brightness) {
    parts.push_back("brightness=" + range_text(*s.brightness));
  }
  if (s.rotation || s.zoom_height || s.translation_height || s.translation_width) {
    parts.push_back(std::string("fill_mode=") + fill_name(s.fill_mode));
    parts.push_back(fmt::format("fill_value={}", s.fill_value));
    parts.push_back(std::string("interpolation=") +
                    (s.interpolation == AffineInterpolation::kBilinear ? "bilinear" : "nearest"));
  }
  std::string out;
  for (const std::string& p : parts) {
    out += (out.empty() ? "" : ",") + p;
  }
  return out;
}

// --- the layers' matrices (Keras 3, keras/src/layers/preprocessing/
// image_preprocessing/random_{rotation,zoom,translation}.py) ---

Projective rotation_matrix(double angle, int64_t h, int64_t w) {
  const double c = std::cos(angle);
  const double s = std::sin(angle);
  const double hm = static_cast<double>(h) - 1;
  const double wm = static_cast<double>(w) - 1;
  const double x_offset = (wm - (c * wm - s * hm)) / 2.0;
  const double y_offset = (hm - (s * wm + c * hm)) / 2.0;
  return {static_cast<float>(c),
          static_cast<float>(-s),
          static_cast<float>(x_offset),
          static_cast<float>(s),
          static_cast<float>(c),
          static_cast<float>(y_offset),
          0.0f,
          0.0f};
}

Projective zoom_matrix(double zx, double zy, int64_t h, int64_t w) {
  const double x_offset = (static_cast<double>(w) - 1.0) / 2.0 * (1.0 - zx);
  const double y_offset = (static_cast<double>(h) - 1.0) / 2.0 * (1.0 - zy);
  return {static_cast<float>(zx),
          0.0f,
          static_cast<float>(x_offset),
          0.0f,
          static_cast<float>(zy),
          static_cast<float>(y_offset),
          0.0f,
          0.0f};
}

Projective translation_matrix(double dx, double dy) {
  return {1.0f, 0.0f, static_cast<float>(-dx), 0.0f, 1.0f, static_cast<float>(-dy), 0.0f, 0.0f};
}

void affine_transform(const float* in,
                      float* out,
                      int64_t c,
                      int64_t h,
                      int64_t w,
                      const Projective& m,
                      AffineInterpolation interpolation,
                      FillMode fill,
                      float fill_value) {
  const int64_t plane = h * w;
  const double fv = fill_value;
  const auto read = [&](int64_t ch, double y, double x) -> double {
    if (0 <= y && y < static_cast<double>(h) && 0 <= x && x < static_cast<double>(w)) {
      return in[ch * plane + static_cast<int64_t>(y) * w + static_cast<int64_t>(x)];
    }
    return fv;
  };
  const double a0 = m[0], a1 = m[1], a2 = m[2], b0 = m[3], b1 = m[4], b2 = m[5], c0 = m[6],
               c1 = m[7];
  // Keras's rotation, zoom and translation are affine: the projection is 1
  // everywhere, and dividing by it changes nothing.
  const bool affine = c0 == 0 && c1 == 0;
  const double hd = static_cast<double>(h);
  const double wd = static_cast<double>(w);
  for (int64_t oy = 0; oy < h; ++oy) {
    for (int64_t ox = 0; ox < w; ++ox) {
      const double x_out = static_cast<double>(ox);
      const double y_out = static_cast<double>(oy);
      const double projection = c0 * x_out + c1 * y_out + 1;
      float* o = out + oy * w + ox;
      if (projection == 0) {  // an infinite point: outside the input
        for (int64_t ch = 0; ch < c; ++ch) {
          o[ch * plane] = fill_value;
        }
        continue;
      }
      const double xs = a0 * x_out + a1 * y_out + a2;
      const double ys = b0 * x_out + b1 * y_out + b2;
      const double x = map_coord(affine ? xs : xs / projection, w, fill);
      const double y = map_coord(affine ? ys : ys / projection, h, fill);
      if (interpolation == AffineInterpolation::kNearest) {
        const double rx = std::floor(x + 0.5);  // JavaScript's Math.round
        const double ry = std::floor(y + 0.5);
        for (int64_t ch = 0; ch < c; ++ch) {
          o[ch * plane] = static_cast<float>(read(ch, ry, rx));
        }
        continue;
      }
      const double y0 = std::floor(y);
      const double x0 = std::floor(x);
      const double y1 = y0 + 1;
      const double x1 = x0 + 1;
      if (0 <= y0 && y1 < hd && 0 <= x0 && x1 < wd) {
        // All four neighbours inside (most pixels): read() without its
        // checks, the same arithmetic in the same order.
        const float* p = in + static_cast<int64_t>(y0) * w + static_cast<int64_t>(x0);
        for (int64_t ch = 0; ch < c; ++ch) {
          const float* q = p + ch * plane;
          const double top = (x1 - x) * q[0] + (x - x0) * q[1];
          const double bottom = (x1 - x) * q[w] + (x - x0) * q[w + 1];
          o[ch * plane] = static_cast<float>((y1 - y) * top + (y - y0) * bottom);
        }
        continue;
      }
      for (int64_t ch = 0; ch < c; ++ch) {
        const double top = (x1 - x) * read(ch, y0, x0) + (x - x0) * read(ch, y0, x1);
        const double bottom = (x1 - x) * read(ch, y1, x0) + (x - x0) * read(ch, y1, x1);
        o[ch * plane] = static_cast<float>((y1 - y) * top + (y - y0) * bottom);
      }
    }
  }
}

void adjust_contrast(float* image, int64_t c, int64_t h, int64_t w, double factor) {
  const int64_t plane = h * w;
  const auto f = static_cast<float>(factor);
  for (int64_t ch = 0; ch < c; ++ch) {
    float* p = image + ch * plane;
    double sum = 0;
    for (int64_t i = 0; i < plane; ++i) {
      sum += p[i];
    }
    const auto mean = static_cast<float>(sum / static_cast<double>(plane));
    for (int64_t i = 0; i < plane; ++i) {
      p[i] = std::clamp((p[i] - mean) * f + mean, 0.0f, 1.0f);
    }
  }
}

void adjust_brightness(float* image, int64_t n, double delta) {
  const auto d = static_cast<float>(delta);
  for (int64_t i = 0; i < n; ++i) {
    image[i] = std::clamp(image[i] + d, 0.0f, 1.0f);
  }
}

Augmenter::Augmenter(AugmentSpec spec, uint64_t seed) : spec_(std::move(spec)), seed_(seed) {}

ImageDraws Augmenter::draws(int64_t epoch, int64_t batch, int64_t slot) const {
  SlotRandom r(seed_, epoch, batch, slot);
  ImageDraws d;
  // One value per layer and image, in the layers' order, as each Keras
  // layer's get_random_transformation draws them.
  if (spec_.flip != FlipMode::kNone) {
    d.flip = r.uniform() <= 0.5;  // RandomFlip: uniform <= 0.5 flips
  }
  if (spec_.rotation) {
    d.angle = r.uniform(spec_.rotation->lower * 2 * kPi, spec_.rotation->upper * 2 * kPi);
  }
  if (spec_.zoom_height) {
    d.zoom_y = r.uniform(1.0 + spec_.zoom_height->lower, 1.0 + spec_.zoom_height->upper);
    d.zoom_x = spec_.zoom_width
                   ? r.uniform(1.0 + spec_.zoom_width->lower, 1.0 + spec_.zoom_width->upper)
                   : d.zoom_y;
  }
  d.shift_y = spec_.translation_height
                  ? r.uniform(spec_.translation_height->lower, spec_.translation_height->upper)
                  : 0.0;
  d.shift_x = spec_.translation_width
                  ? r.uniform(spec_.translation_width->lower, spec_.translation_width->upper)
                  : 0.0;
  if (spec_.contrast) {
    d.contrast = r.uniform(1.0 - spec_.contrast->lower, 1.0 + spec_.contrast->upper);
  }
  if (spec_.brightness) {
    d.brightness = r.uniform(spec_.brightness->lower, spec_.brightness->upper);  // * (1 - 0)
  }
  return d;
}

void Augmenter::apply(
    float* image, float* scratch, int64_t c, int64_t h, int64_t w, const ImageDraws& d) const {
  const int64_t n = c * h * w;
  if (d.flip) {
    const bool horizontal =
        spec_.flip == FlipMode::kHorizontal || spec_.flip == FlipMode::kHorizontalAndVertical;
    const bool vertical =
        spec_.flip == FlipMode::kVertical || spec_.flip == FlipMode::kHorizontalAndVertical;
    for (int64_t ch = 0; ch < c; ++ch) {
      float* p = image + ch * h * w;
      if (horizontal) {
        for (int64_t y = 0; y < h; ++y) {
          std::reverse(p + y * w, p + (y + 1) * w);
        }
      }
      if (vertical) {
        for (int64_t y = 0; y < h / 2; ++y) {
          std::swap_ranges(p + y * w, p + (y + 1) * w, p + (h - 1 - y) * w);
        }
      }
    }
  }
  // Each geometric layer resamples the previous one's output, as Keras's
  // layers do one after the other: one composed matrix would interpolate
  // and fill once instead of each time, which is not what they compute.
  const auto geometric = [&](const Projective& m) {
    affine_transform(image, scratch, c, h, w, m, spec_.interpolation, spec_.fill_mode,
                     static_cast<float>(spec_.fill_value));
    std::memcpy(image, scratch, static_cast<size_t>(n) * sizeof(float));
  };
  if (spec_.rotation) {
    geometric(rotation_matrix(d.angle, h, w));
  }
  if (spec_.zoom_height) {
    geometric(zoom_matrix(d.zoom_x, d.zoom_y, h, w));
  }
  if (spec_.translation_height || spec_.translation_width) {
    // RandomTranslation: the drawn fractions times the height and width.
    geometric(
        translation_matrix(d.shift_x * static_cast<double>(w), d.shift_y * static_cast<double>(h)));
  }
  if (spec_.contrast) {
    adjust_contrast(image, c, h, w, d.contrast);
  }
  if (spec_.brightness) {
    adjust_brightness(image, n, d.brightness);
  }
}

at::Tensor Augmenter::batch(const Dataset& data,
                            const at::Tensor& idx,
                            int64_t epoch,
                            int64_t batch) const {
  const at::Tensor& images = data.images;
  if (!images.device().is_cpu() || images.dim() != 4 ||
      (images.scalar_type() != at::kByte && images.scalar_type() != at::kFloat)) {
    throw ConfigError("augmentation: the images must be a [N,C,H,W] uint8 or float32 CPU tensor");
  }
  const at::Tensor index = idx.to(at::kCPU, at::kLong).contiguous();
  const at::Tensor rows =
      data.rows.defined() ? data.rows.to(at::kCPU, at::kLong).contiguous() : at::Tensor();
  const int64_t count = index.size(0);
  const int64_t records = data.size();
  const int64_t c = images.size(1);
  const int64_t h = images.size(2);
  const int64_t w = images.size(3);
  const int64_t n_rows = images.size(0);
  const auto st = images.strides();
  at::Tensor out = at::empty({count, c, h, w}, at::kFloat);
  float* o = out.data_ptr<float>();
  std::vector<float> scratch(static_cast<size_t>(c * h * w));
  const int64_t* ix = index.data_ptr<int64_t>();
  const int64_t* rx = rows.defined() ? rows.data_ptr<int64_t>() : nullptr;
  const bool bytes = images.scalar_type() == at::kByte;
  for (int64_t i = 0; i < count; ++i) {
    const int64_t record = ix[i];
    if (record < 0 || record >= records) {
      throw DataError(fmt::format("augmentation: record {} of a dataset of {}", record, records));
    }
    const int64_t row = rx != nullptr ? rx[record] : record;
    if (row < 0 || row >= n_rows) {
      throw DataError(fmt::format("augmentation: row {} of images of {}", row, n_rows));
    }
    float* dst = o + i * c * h * w;
    for (int64_t ch = 0; ch < c; ++ch) {
      for (int64_t y = 0; y < h; ++y) {
        const int64_t base = row * st[0] + ch * st[1] + y * st[2];
        float* d = dst + (ch * h + y) * w;
        if (bytes) {
          const uint8_t* src = images.data_ptr<uint8_t>() + base;
          for (int64_t x = 0; x < w; ++x) {
            d[x] = static_cast<float>(src[x * st[3]]) / 255.0f;  // as Dataset::gather
          }
        } else {
          const float* src = images.data_ptr<float>() + base;
          for (int64_t x = 0; x < w; ++x) {
            d[x] = src[x * st[3]];
          }
        }
      }
    }
    apply(dst, scratch.data(), c, h, w, draws(epoch, batch, i));
  }
  return out;
}

// --- the pipeline ---

AugmentPipeline::AugmentPipeline(const Augmenter& augmenter,
                                 const Dataset& data,
                                 at::Tensor order,
                                 int64_t epoch,
                                 int64_t first_batch,
                                 int64_t batches,
                                 int64_t batch_size,
                                 int threads,
                                 int depth)
    : augmenter_(augmenter),
      data_(data),
      order_(order.to(at::kCPU, at::kLong).contiguous()),
      epoch_(epoch),
      batches_(batches),
      batch_size_(batch_size),
      depth_(std::max(depth, 1)),
      next_take_(first_batch),
      next_schedule_(first_batch) {
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    schedule_locked();
  }
  const int n = std::max(threads, 1);
  workers_.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    workers_.emplace_back([this] { work(); });
  }
}

AugmentPipeline::~AugmentPipeline() {
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    cancel_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : workers_) {
    t.join();
  }
}

void AugmentPipeline::schedule_locked() {
  while (next_schedule_ < batches_ && next_schedule_ < next_take_ + depth_) {
    tasks_.push_back(next_schedule_++);
  }
}

void AugmentPipeline::work() {
  while (true) {
    int64_t b = 0;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [this] { return cancel_ || !tasks_.empty(); });
      if (cancel_) {
        return;
      }
      b = tasks_.front();
      tasks_.pop_front();
    }
    try {
      const int64_t first = b * batch_size_;
      const int64_t len = std::min(batch_size_, order_.size(0) - first);
      at::Tensor images = augmenter_.batch(data_, order_.narrow(0, first, len), epoch_, b);
      {
        const std::lock_guard<std::mutex> lock(mutex_);
        done_.emplace(b, std::move(images));
      }
    } catch (...) {
      const std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) {
        error_ = std::current_exception();
      }
    }
    cv_.notify_all();
  }
}

at::Tensor AugmentPipeline::next() {
  std::unique_lock<std::mutex> lock(mutex_);
  if (next_take_ >= batches_) {
    throw ConfigError("augmentation: no batch left in this epoch");
  }
  cv_.wait(lock, [this] { return error_ || done_.count(next_take_) > 0; });
  if (error_) {
    std::rethrow_exception(error_);
  }
  const auto it = done_.find(next_take_);
  at::Tensor images = std::move(it->second);
  done_.erase(it);
  ++next_take_;
  schedule_locked();
  lock.unlock();
  cv_.notify_all();
  return images;
}

}  // namespace mnist
