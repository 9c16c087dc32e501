// Digit images from files (PNG, PGM and the other formats stb_image reads),
// prepared the way MNIST digits were: grayscale, bright ink on black, the
// digit scaled into a 20x20 box and centred by its centre of mass in 28x28.
#pragma once

#include <string>

#include <ATen/core/Tensor.h>

namespace mnist {

/// Reads an image file of any size and bit depth (gray, gray+alpha, RGB,
/// RGBA; transparent pixels count as background) and returns [H,W] float32
/// in [0,1] where 1 is ink: with `dark_ink` (dark ink on a light
/// background) the image is inverted. Throws DataError naming the file.
at::Tensor read_gray_image(const std::string& path, bool dark_ink);

/// MNIST-style [1,1,28,28] float32 in [0,1] from a [H,W] ink image: crops
/// to the ink, scales the longer side to 20 pixels (aspect kept), and
/// places it so that its centre of mass is at the centre. Throws DataError
/// with Remedy::kInvertImage when the image holds no ink.
at::Tensor mnist_style(const at::Tensor& ink, const std::string& origin);

/// read_gray_image + mnist_style.
at::Tensor load_digit_image(const std::string& path, bool dark_ink);

}  // namespace mnist
