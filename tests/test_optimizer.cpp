// The six optimizers: each update equals the formula of tfjs-core's optimizer
// of that name (computed here in double precision), with tfjs-layers'
// getOptimizer defaults.
#include "mnist/optimizer.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <ATen/ATen.h>

#include "mnist/error.hpp"

namespace mnist {
namespace {

TEST(OptimizerTest, NamesAndDefaultsAreTfjsGetOptimizers) {
  EXPECT_EQ(optimizer_names(),
            (std::vector<std::string>{"rmsprop", "adam", "sgd", "adagrad", "adadelta", "adamax"}));
  for (const std::string& name : optimizer_names()) {
    ASSERT_TRUE(parse_optimizer(name).has_value()) << name;
    EXPECT_EQ(optimizer_name(*parse_optimizer(name)), name);
  }
  EXPECT_FALSE(parse_optimizer("RMSProp").has_value());
  EXPECT_FALSE(parse_optimizer("nadam").has_value());
  struct Expected {
    OptimizerKind kind;
    double lr;
  };
  for (const Expected& e : {Expected{OptimizerKind::kRmsProp, 0.001},
                            {OptimizerKind::kAdam, 0.001},
                            {OptimizerKind::kSgd, 0.01},
                            {OptimizerKind::kAdagrad, 0.01},
                            {OptimizerKind::kAdadelta, 1.0},
                            {OptimizerKind::kAdamax, 0.002}}) {
    EXPECT_DOUBLE_EQ(optimizer_defaults(e.kind).learning_rate, e.lr) << optimizer_name(e.kind);
    EXPECT_DOUBLE_EQ(Optimizer({}, e.kind).learning_rate(), e.lr);
  }
  EXPECT_DOUBLE_EQ(optimizer_defaults(OptimizerKind::kRmsProp).rho, 0.9);
  EXPECT_DOUBLE_EQ(optimizer_defaults(OptimizerKind::kRmsProp).epsilon, 1e-7);
  EXPECT_DOUBLE_EQ(optimizer_defaults(OptimizerKind::kAdam).beta1, 0.9);
  EXPECT_DOUBLE_EQ(optimizer_defaults(OptimizerKind::kAdam).beta2, 0.999);
  EXPECT_DOUBLE_EQ(optimizer_defaults(OptimizerKind::kAdagrad).initial_accumulator, 0.1);
  EXPECT_DOUBLE_EQ(optimizer_defaults(OptimizerKind::kAdadelta).rho, 0.95);
  EXPECT_DOUBLE_EQ(optimizer_defaults(OptimizerKind::kAdamax).beta2, 0.999);
  EXPECT_DOUBLE_EQ(Optimizer({}, OptimizerKind::kAdam, 0.05).learning_rate(), 0.05);
}

/// One element's state in the reference computation.
struct Ref {
  double w, s1 = 0, s2 = 0;
};
using RefStep = std::function<void(Ref&, double g, int t)>;

/// Three steps of `kind` on four weights against `ref`, element by element.
void expect_matches_formula(OptimizerKind kind, double lr, double initial_s1, const RefStep& ref) {
  const std::vector<double> w0 = {0.5, -1.0, 2.0, 0.0};
  const std::vector<std::vector<double>> grads = {
      {0.1, -0.2, 3.0, 1e-5}, {-0.3, 0.05, 1.0, 0.0}, {0.2, 0.2, -2.0, 1e-3}};
  at::Tensor w = at::tensor(std::vector<float>(w0.begin(), w0.end())).set_requires_grad(true);
  Optimizer opt({w}, kind, lr);
  std::vector<Ref> r;
  for (double v : w0) {
    r.push_back({v, initial_s1, 0});
  }
  for (int t = 1; t <= 3; ++t) {
    const auto& g = grads[t - 1];
    w.mutable_grad() = at::tensor(std::vector<float>(g.begin(), g.end()));
    opt.step();
    for (size_t i = 0; i < 4; ++i) {
      ref(r[i], g[i], t);
      const double tol = 1e-6 * std::max(1.0, std::abs(r[i].w));
      EXPECT_NEAR(w[i].item<double>(), r[i].w, tol)
          << optimizer_name(kind) << " step " << t << " element " << i;
      if (opt.slot_count() > 0) {
        EXPECT_NEAR(opt.slots()[0][i].item<double>(), r[i].s1, 1e-6 * std::max(1.0, r[i].s1));
      }
    }
  }
  EXPECT_EQ(opt.iterations(), 3);
}

/// A CUDA graph replays the host's numbers of its capture: Adam's and
/// Adamax's bias corrections change every step, so train() must not graph
/// them; a replayed step is counted by the caller.
TEST(OptimizerTest, ReplayableStepsAndTheirCount) {
  const auto make = [](OptimizerKind kind) {
    return Optimizer({at::zeros({2}).requires_grad_(true)}, kind);
  };
  for (const OptimizerKind kind : {OptimizerKind::kRmsProp, OptimizerKind::kSgd,
                                   OptimizerKind::kAdagrad, OptimizerKind::kAdadelta}) {
    EXPECT_TRUE(make(kind).step_is_replayable()) << optimizer_name(kind);
  }
  EXPECT_FALSE(make(OptimizerKind::kAdam).step_is_replayable());
  EXPECT_FALSE(make(OptimizerKind::kAdamax).step_is_replayable());
  Optimizer opt = make(OptimizerKind::kRmsProp);
  opt.count_replayed_step();
  opt.count_replayed_step();
  EXPECT_EQ(opt.iterations(), 2);
}

TEST(OptimizerTest, RmspropEqualsItsFormula) {
  expect_matches_formula(OptimizerKind::kRmsProp, 0.001, 0, [](Ref& r, double g, int) {
    r.s1 = 0.9 * r.s1 + 0.1 * g * g;
    r.w -= 0.001 * g / std::sqrt(r.s1 + 1e-7);  // epsilon inside the root
  });
}

TEST(OptimizerTest, AdamEqualsItsFormula) {
  expect_matches_formula(OptimizerKind::kAdam, 0.001, 0, [](Ref& r, double g, int t) {
    r.s1 = 0.9 * r.s1 + 0.1 * g;
    r.s2 = 0.999 * r.s2 + 0.001 * g * g;
    const double m = r.s1 / (1 - std::pow(0.9, t));
    const double v = r.s2 / (1 - std::pow(0.999, t));
    r.w -= 0.001 * m / (std::sqrt(v) + 1e-7);  // epsilon outside the root
  });
}

TEST(OptimizerTest, SgdEqualsItsFormula) {
  expect_matches_formula(OptimizerKind::kSgd, 0.01, 0,
                         [](Ref& r, double g, int) { r.w -= 0.01 * g; });
}

TEST(OptimizerTest, AdagradEqualsItsFormula) {
  expect_matches_formula(OptimizerKind::kAdagrad, 0.01, 0.1, [](Ref& r, double g, int) {
    r.s1 += g * g;
    r.w -= 0.01 * g / std::sqrt(r.s1 + 1e-7);
  });
}

TEST(OptimizerTest, AdadeltaEqualsTfjsOrder) {
  expect_matches_formula(OptimizerKind::kAdadelta, 1.0, 0, [](Ref& r, double g, int) {
    // TF.js divides by the accumulated gradient of before this step.
    const double u = std::sqrt(r.s2 + 1e-7) / std::sqrt(r.s1 + 1e-7) * g;
    r.s1 = 0.95 * r.s1 + 0.05 * g * g;
    r.s2 = 0.95 * r.s2 + 0.05 * u * u;
    r.w -= u;
  });
}

TEST(OptimizerTest, AdamaxEqualsItsFormula) {
  expect_matches_formula(OptimizerKind::kAdamax, 0.002, 0, [](Ref& r, double g, int t) {
    r.s1 = 0.9 * r.s1 + 0.1 * g;
    r.s2 = std::max(0.999 * r.s2, std::abs(g));
    r.w -= 0.002 / (1 - std::pow(0.9, t)) * r.s1 / (r.s2 + 1e-7);
  });
}

TEST(OptimizerTest, LearningRateChangesTakeEffectAndBadRatesAreRefused) {
  at::Tensor w = at::zeros({1}).set_requires_grad(true);
  Optimizer opt({w}, OptimizerKind::kSgd);
  opt.set_learning_rate(0.5);
  w.mutable_grad() = at::ones({1});
  opt.step();
  EXPECT_FLOAT_EQ(w.item<float>(), -0.5F);
  // A rate of 0 (a warmup's first step) leaves the weight as it is.
  opt.set_learning_rate(0);
  opt.step();
  EXPECT_FLOAT_EQ(w.item<float>(), -0.5F);
  EXPECT_THROW(opt.set_learning_rate(std::nan("")), ConfigError);
  EXPECT_THROW(opt.set_learning_rate(std::numeric_limits<double>::infinity()), ConfigError);
  EXPECT_THROW(opt.set_learning_rate(-1), ConfigError);
}

TEST(OptimizerTest, LoadStateRestoresSlotsAndStepCount) {
  at::Tensor w = at::ones({3}).set_requires_grad(true);
  Optimizer a({w}, OptimizerKind::kAdam);
  w.mutable_grad() = at::full({3}, 0.5);
  a.step();
  a.step();
  at::Tensor w2 = at::ones({3}).set_requires_grad(true);
  Optimizer b({w2}, OptimizerKind::kAdam);
  b.load_state(a.slots(), a.iterations());
  EXPECT_EQ(b.iterations(), 2);
  w2.mutable_grad() = at::full({3}, 0.5);
  w.mutable_grad() = at::full({3}, 0.5);
  w2.detach().copy_(w.detach());
  a.step();
  b.step();
  EXPECT_TRUE(w.equal(w2));
  EXPECT_THROW(b.load_state({}, 0), ConfigError);
  EXPECT_THROW(b.load_state({at::zeros({2}), at::zeros({2})}, 0), ConfigError);
}

TEST(OptimizerTest, TakesOverTfjsStateOnlyWhenItIsItsOwn) {
  using Named = std::vector<std::pair<std::string, at::Tensor>>;
  at::Tensor k = at::ones({2, 3}).set_requires_grad(true);
  at::Tensor b = at::ones({2}).set_requires_grad(true);
  at::Tensor frozen = at::ones({4});  // takes no gradient: needs no saved slots
  const std::vector<std::string> names = {"d/kernel", "d/bias", "c/kernel"};
  const Named adam = {{"iter", at::scalar_tensor(int64_t{5}, at::kLong)},
                      {"d/kernel/m", at::full({2, 3}, 0.1)},
                      {"d/bias/m", at::full({2}, 0.2)},
                      {"d/kernel/v", at::full({2, 3}, 0.3)},
                      {"d/bias/v", at::full({2}, 0.4)}};
  Optimizer opt({k, b, frozen}, OptimizerKind::kAdam);
  EXPECT_EQ(load_tfjs_state(opt, names, "Adam", nullptr, adam), "");
  EXPECT_EQ(opt.iterations(), 5);
  EXPECT_TRUE(opt.slots()[0].equal(at::full({2, 3}, 0.1)));  // m of d/kernel
  EXPECT_TRUE(opt.slots()[4].equal(at::full({2}, 0.4)));     // v of d/bias
  EXPECT_TRUE(opt.slots()[2].equal(at::zeros({4})));         // the frozen one's m
  // Adam's next step uses t = 6: (m / (1 - 0.9^6)) / (sqrt(v / (1 - 0.999^6)) + eps).
  k.mutable_grad() = at::zeros({2, 3});
  b.mutable_grad() = at::zeros({2});
  opt.step();
  const double m = 0.9 * 0.1, v = 0.999 * 0.3;
  const double step =
      0.001 * (m / (1 - std::pow(0.9, 6))) / (std::sqrt(v / (1 - std::pow(0.999, 6))) + 1e-7);
  EXPECT_NEAR(k[0][0].item<double>(), 1.0 - step, 1e-6);

  Optimizer rms({k, b, frozen}, OptimizerKind::kRmsProp);
  EXPECT_EQ(load_tfjs_state(rms, names, "Adam", nullptr, adam),
            "it is the state of TF.js's Adam, this training's optimizer is rmsprop");
  EXPECT_EQ(load_tfjs_state(rms, names, "", nullptr, adam),
            "it has no \"d/kernel/rms\" of the model's shape");
  const Named rms_state = {{"iter", at::scalar_tensor(int64_t{2}, at::kLong)},
                           {"d/kernel/rms", at::full({2, 3}, 0.5)},
                           {"d/bias/rms", at::full({3}, 0.5)}};  // not d/bias's shape
  EXPECT_EQ(load_tfjs_state(rms, names, "RMSProp", nullptr, rms_state),
            "it has no \"d/bias/rms\" of the model's shape");
  EXPECT_NE(load_tfjs_state(rms, names, "RMSProp", {{"momentum", 0.9}}, rms_state)
                .find("its RMSProp has momentum or is centered"),
            std::string::npos);
  EXPECT_EQ(rms.iterations(), 0);  // nothing taken over
  EXPECT_TRUE(rms.slots()[0].equal(at::zeros({2, 3})));
  Optimizer adamax({k, b, frozen}, OptimizerKind::kAdamax);
  EXPECT_EQ(load_tfjs_state(adamax, names, "", nullptr, adam), "TF.js saves no state of adamax");
  Optimizer sgd({k, b, frozen}, OptimizerKind::kSgd);
  EXPECT_EQ(load_tfjs_state(sgd, names, "SGD", nullptr, Named{adam[0]}), "");
  EXPECT_EQ(sgd.iterations(), 5);
  EXPECT_EQ(load_tfjs_state(sgd, names, "SGD", nullptr, Named{}),
            "it has no step count (\"iter\")");
}

TEST(OptimizerTest, ZeroGradDropsGradients) {
  at::Tensor w = at::ones({2}).set_requires_grad(true);
  Optimizer opt({w}, OptimizerKind::kRmsProp);
  w.mutable_grad() = at::ones({2});
  opt.zero_grad();
  EXPECT_FALSE(w.grad().defined());
  opt.step();  // no gradient: no change
  EXPECT_TRUE(w.equal(at::ones({2})));
}

}  // namespace
}  // namespace mnist
