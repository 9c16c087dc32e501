// Console rendering of training progress.
#include "cli/progress.hpp"

#include <unistd.h>

#include <cmath>
#include <string>

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

namespace mnist::cli {

namespace {

std::string clock_text(double seconds) {
  const auto s = static_cast<long>(std::lround(std::max(0.0, seconds)));
  return fmt::format("{}:{:02d}", s / 60, s % 60);
}

}  // namespace

ProgressPrinter::ProgressPrinter(std::FILE* out, bool live) : out_(out), live_(live) {}

bool ProgressPrinter::is_terminal(std::FILE* file) { return ::isatty(::fileno(file)) == 1; }

void ProgressPrinter::on_batch(const BatchProgress& p) {
  if (!live_) {
    return;
  }
  constexpr int kWidth = 30;
  const double done = static_cast<double>(p.batch) / static_cast<double>(p.batches);
  const int filled = static_cast<int>(done * kWidth);
  const double eta = p.seconds / done - p.seconds;
  const std::string line =
      fmt::format("\rEpoch {}/{} [{}{}] {}/{} ETA {} - loss: {:.4f} - acc: {:.4f}\033[K", p.epoch,
                  p.epochs, std::string(filled, '='), std::string(kWidth - filled, ' '), p.batch,
                  p.batches, clock_text(eta), p.loss, p.accuracy);
  std::fputs(line.c_str(), out_);
  std::fflush(out_);
}

void ProgressPrinter::on_decode(const DecodeProgress& p) {
  const double rate = p.seconds > 0 ? static_cast<double>(p.done) / p.seconds : 0;
  const double eta = rate > 0 ? static_cast<double>(p.total - p.done) / rate : 0;
  if (!live_) {
    if (p.seconds - last_decode_line_ >= 10 && p.done < p.total) {
      last_decode_line_ = p.seconds;
      spdlog::info("decoding images: {}/{}, {:.0f} images/s, ETA {}", p.done, p.total, rate,
                   clock_text(eta));
    }
    return;
  }
  constexpr int kWidth = 30;
  const double done = p.total > 0 ? static_cast<double>(p.done) / static_cast<double>(p.total) : 1;
  const int filled = static_cast<int>(done * kWidth);
  const std::string line =
      fmt::format("\rDecoding [{}{}] {}/{} {:.0f} images/s ETA {}\033[K", std::string(filled, '='),
                  std::string(kWidth - filled, ' '), p.done, p.total, rate, clock_text(eta));
  std::fputs(line.c_str(), out_);
  std::fflush(out_);
  if (p.done == p.total) {
    finish_line();
  }
}

void ProgressPrinter::finish_line() {
  if (live_) {
    std::fputs("\r\033[K", out_);
    std::fflush(out_);
  }
}

void ProgressPrinter::on_epoch(const EpochStats& s, int64_t epochs, bool show_learning_rate) {
  finish_line();
  std::string line = fmt::format(
      "Epoch {}/{} - {:.1f}s - {:.0f} img/s - {:.1f} ms/step - loss: {:.4f} - "
      "acc: {:.4f}",
      s.epoch, epochs, s.seconds, s.images_per_second,
      1000.0 * s.train_seconds / static_cast<double>(std::max<int64_t>(1, s.batches)), s.loss,
      s.accuracy);
  if (!std::isnan(s.val_loss)) {
    line += fmt::format(" - val_loss: {:.4f} - val_acc: {:.4f}", s.val_loss, s.val_accuracy);
  }
  if (show_learning_rate) {
    line += fmt::format(" - lr: {:g}", s.learning_rate);
  }
  spdlog::info(line);
}

}  // namespace mnist::cli
