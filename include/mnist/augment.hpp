// Data augmentation (--augment): Keras 3's random image preprocessing layers
// (RandomFlip, RandomRotation, RandomZoom, RandomTranslation, RandomContrast,
// RandomBrightness) with their parameter names and meaning, run on CPU
// threads in the data pipeline beside training, never in the model (so
// model.json is what it is without it). docs/data.md, "Augmentation".
//
// Randomness is counter-based: the draws for slot i of batch b of epoch e
// are a pure function of (seed, e, b, i), so a resumed run and any number of
// worker threads give the same images.
#pragma once

#include <array>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <ATen/core/Tensor.h>

#include "mnist/data.hpp"

namespace mnist {

/// RandomFlip's mode; kHorizontalAndVertical flips both ways or neither
/// (Keras draws one value per image for both).
enum class FlipMode { kNone, kHorizontal, kVertical, kHorizontalAndVertical };
/// How points outside the input are filled (TF's ImageProjectiveTransformV3).
enum class FillMode { kReflect, kWrap, kConstant, kNearest };
enum class AffineInterpolation { kBilinear, kNearest };

/// A factor's range as Keras keeps it (layer.factor / height_lower..upper),
/// after Keras's rules turned the user's number or pair into it.
struct FactorRange {
  double lower = 0;
  double upper = 0;
  bool operator==(const FactorRange& o) const { return lower == o.lower && upper == o.upper; }
};

/// One --augment: the layers given, in the order they are applied (flip,
/// rotation, zoom, translation, contrast, brightness: as Keras's examples
/// stack them), and the geometric layers' shared fill and interpolation.
struct AugmentSpec {
  FlipMode flip = FlipMode::kNone;
  std::optional<FactorRange> rotation;            ///< fractions of a full turn
  std::optional<FactorRange> zoom_height;         ///< RandomZoom height_factor
  std::optional<FactorRange> zoom_width;          ///< unset with zoom: the height's draw
  std::optional<FactorRange> translation_height;  ///< fractions of the height
  std::optional<FactorRange> translation_width;
  std::optional<FactorRange> contrast;    ///< drawn in [1 - lower, 1 + upper]
  std::optional<FactorRange> brightness;  ///< times value_range (0, 1)
  FillMode fill_mode = FillMode::kReflect;
  double fill_value = 0;
  AffineInterpolation interpolation = AffineInterpolation::kBilinear;
  /// Whether any layer is given.
  bool enabled() const;
};

/// Parses "flip=horizontal,rotation=0.1,zoom=-0.2:0.1,fill_mode=constant";
/// "default" is flip=horizontal,rotation=0.1,zoom=0.1 (docs/data.md). Each
/// factor is Keras's: one number f or a pair lo:hi, checked and turned into
/// a range as the layer's constructor does. Throws ConfigError naming the
/// bad part and what is allowed.
AugmentSpec parse_augment_spec(const std::string& text);
/// The canonical text of `spec` (parse_augment_spec reads it back to the
/// same spec): keys in application order, a range as "f" when it is (-f, f)
/// else "lo:hi", fill and interpolation only when a geometric layer is
/// given; "" when nothing is.
std::string augment_spec_text(const AugmentSpec& spec);

/// One image's random values (what Keras's get_random_transformation draws).
struct ImageDraws {
  bool flip = false;
  double angle = 0;       ///< radians, counter-clockwise
  double zoom_x = 1;      ///< 1 + width factor (> 1: zoomed out)
  double zoom_y = 1;      ///< 1 + height factor
  double shift_x = 0;     ///< pixels, positive: right
  double shift_y = 0;     ///< pixels, positive: down
  double contrast = 1;    ///< the contrast factor
  double brightness = 0;  ///< added to every value
};

/// A projective transform as TF's ImageProjectiveTransformV3 takes it:
/// [a0 a1 a2 b0 b1 b2 c0 c1] maps an OUTPUT point (x, y) to the INPUT point
/// ((a0 x + a1 y + a2) / k, (b0 x + b1 y + b2) / k), k = c0 x + c1 y + 1.
/// float32, as Keras's layers make them.
using Projective = std::array<float, 8>;

/// RandomRotation's matrix for `angle` radians on an h x w image (rotation
/// about the image's centre).
Projective rotation_matrix(double angle, int64_t h, int64_t w);
/// RandomZoom's matrix: zoom factors zx, zy about the image's centre.
Projective zoom_matrix(double zx, double zy, int64_t h, int64_t w);
/// RandomTranslation's matrix for a shift of dx, dy pixels.
Projective translation_matrix(double dx, double dy);

/// tf.image.transform on one [c,h,w] float image (`in` and `out` do not
/// overlap): each output pixel samples the input at m's point, mapped by
/// `fill` (reflect, wrap, nearest: into the image; constant: fill_value
/// outside), nearest (rounded half away... as Math.round: half up) or
/// bilinear, as TF.js's CPU kernel computes it (double coordinates).
void affine_transform(const float* in,
                      float* out,
                      int64_t c,
                      int64_t h,
                      int64_t w,
                      const Projective& m,
                      AffineInterpolation interpolation,
                      FillMode fill,
                      float fill_value);

/// RandomContrast on one [c,h,w] image: per channel,
/// (x - mean) * factor + mean, clipped to [0, 1].
void adjust_contrast(float* image, int64_t c, int64_t h, int64_t w, double factor);
/// RandomBrightness: x + delta, clipped to [0, 1].
void adjust_brightness(float* image, int64_t n, double delta);

/// Applies a spec with a seed: pure and thread-safe.
class Augmenter {
 public:
  Augmenter(AugmentSpec spec, uint64_t seed);
  const AugmentSpec& spec() const { return spec_; }
  /// The draws of slot `slot` of batch `batch` (0-based) of epoch `epoch`
  /// (1-based): a function of the seed and these three only.
  ImageDraws draws(int64_t epoch, int64_t batch, int64_t slot) const;
  /// Applies `d` to one [c,h,w] image in place (`scratch`: c*h*w floats).
  void apply(
      float* image, float* scratch, int64_t c, int64_t h, int64_t w, const ImageDraws& d) const;
  /// The records `idx` (CPU int64) of `data` (CPU; uint8 divided by 255,
  /// or float32) as float32 [B,C,H,W], augmented as slots 0..B-1 of
  /// (epoch, batch). Uses no intra-op threads.
  at::Tensor batch(const Dataset& data, const at::Tensor& idx, int64_t epoch, int64_t batch) const;

 private:
  AugmentSpec spec_;
  uint64_t seed_;
};

/// One epoch's augmented batches, prepared on `threads` worker threads at
/// most `depth` batches ahead of the one training takes, in order. The
/// workers only ever wait for work, never for room, so destroying the
/// pipeline (an interrupted run) ends them at once after the batch each is
/// doing.
class AugmentPipeline {
 public:
  /// Batches first_batch..batches-1 of `order` (CPU int64) in `batch_size`
  /// steps (the last may be shorter).
  AugmentPipeline(const Augmenter& augmenter,
                  const Dataset& data,
                  at::Tensor order,
                  int64_t epoch,
                  int64_t first_batch,
                  int64_t batches,
                  int64_t batch_size,
                  int threads,
                  int depth);
  ~AugmentPipeline();
  AugmentPipeline(const AugmentPipeline&) = delete;
  AugmentPipeline& operator=(const AugmentPipeline&) = delete;
  /// The next batch's images (waits for them); rethrows a worker's error.
  at::Tensor next();

 private:
  void work();
  void schedule_locked();

  const Augmenter& augmenter_;
  const Dataset& data_;
  at::Tensor order_;
  int64_t epoch_, batches_, batch_size_, depth_;
  int64_t next_take_, next_schedule_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<int64_t> tasks_;
  std::map<int64_t, at::Tensor> done_;
  std::exception_ptr error_;
  bool cancel_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace mnist
