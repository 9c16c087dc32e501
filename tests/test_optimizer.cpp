// RMSprop: the update equals TF.js's formula (epsilon inside the root).
#include "mnist/optimizer.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include <ATen/ATen.h>

namespace mnist {
namespace {

TEST(OptimizerTest, DefaultsAreTfjsRmsprop) {
  const RmsPropOptions o;
  EXPECT_DOUBLE_EQ(o.learning_rate, 0.001);
  EXPECT_DOUBLE_EQ(o.rho, 0.9);
  EXPECT_DOUBLE_EQ(o.epsilon, 1e-7);
}

TEST(OptimizerTest, TwoStepsEqualTheFormula) {
  const std::vector<double> w0 = {0.5, -1.0, 2.0, 0.0};
  const std::vector<double> g1 = {0.1, -0.2, 3.0, 1e-5};
  const std::vector<double> g2 = {-0.3, 0.05, 1.0, 0.0};
  at::Tensor w = at::tensor(std::vector<float>(w0.begin(), w0.end())).set_requires_grad(true);
  RmsProp opt({w}, RmsPropOptions{});

  std::vector<double> ms(4, 0.0);
  std::vector<double> expected = w0;
  for (const auto* g : {&g1, &g2}) {
    w.mutable_grad() = at::tensor(std::vector<float>(g->begin(), g->end()));
    opt.step();
    for (size_t i = 0; i < 4; ++i) {
      ms[i] = 0.9 * ms[i] + 0.1 * (*g)[i] * (*g)[i];
      expected[i] -= 0.001 * (*g)[i] / std::sqrt(ms[i] + 1e-7);
    }
    for (size_t i = 0; i < 4; ++i) {
      EXPECT_NEAR(w[i].item<double>(), expected[i], 1e-7) << "element " << i;
      EXPECT_NEAR(opt.mean_squares()[0][i].item<double>(), ms[i], 1e-7);
    }
  }
  // The epsilon sits inside the root: a tiny gradient moves the weight by
  // about lr * g / sqrt(1e-7), not by lr * sign(g).
  EXPECT_NEAR(w[3].item<double>(), -0.001 * 1e-5 / std::sqrt(0.1 * 1e-10 + 1e-7), 1e-9);
}

TEST(OptimizerTest, ZeroGradDropsGradients) {
  at::Tensor w = at::ones({2}).set_requires_grad(true);
  RmsProp opt({w}, RmsPropOptions{});
  w.mutable_grad() = at::ones({2});
  opt.zero_grad();
  EXPECT_FALSE(w.grad().defined());
  opt.step();  // no gradient: no change
  EXPECT_TRUE(w.equal(at::ones({2})));
}

}  // namespace
}  // namespace mnist
