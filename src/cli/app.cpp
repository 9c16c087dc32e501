// CLI11 parser set-up, logging set-up, dispatch, and the program's one
// try/catch that maps errors to messages and exit codes.
#include "cli/app.hpp"

#include <unistd.h>

#include <csignal>
#include <cstdlib>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <c10/util/Exception.h>

#include "cli/shared.hpp"
#include "mnist/device.hpp"
#include "mnist/error.hpp"
#include "mnist/tfjs_io.hpp"

namespace mnist::cli {

namespace {

void setup_logging(const GlobalOptions& global) {
  spdlog::drop("mnist-train");  // run() may be called more than once (tests)
  auto logger = spdlog::stderr_color_mt("mnist-train");
  logger->set_pattern("%^[%l]%$ %v");
  logger->set_level(global.quiet ? spdlog::level::err : spdlog::level::from_str(global.log_level));
  spdlog::set_default_logger(logger);
}

int fail(ExitCode code, const std::string& message) {
  if (!spdlog::get("mnist-train")) {
    setup_logging(GlobalOptions{});
  }
  spdlog::error(message);
  return static_cast<int>(code);
}

/// A core error, with its remedy worded as this CLI's flag.
int fail(ExitCode code, const Error& e) { return fail(code, e.what() + remedy_hint(e.remedy())); }

/// c10::Error's what() carries a C++ backtrace; keep its first line only.
std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

}  // namespace

void reexec_for_fast_blas(char** argv) {
  constexpr const char* kGuard = "MNIST_TRAIN_BLAS_REEXEC";
  if (std::getenv(kGuard) != nullptr) {
    return;  // already done once: never loop
  }
  if (const auto coretype = openblas_coretype_fix()) {
    ::setenv("OPENBLAS_CORETYPE", coretype->c_str(), 1);
    ::setenv(kGuard, coretype->c_str(), 1);
    ::execv("/proc/self/exe", argv);
    ::unsetenv("OPENBLAS_CORETYPE");  // execv failed: go on with the generic kernels
  }
}

std::unique_ptr<CLI::App> build_app(Options& options) {
  auto app = std::make_unique<CLI::App>(
      "Trains the TensorFlow.js mnist-node convnet on MNIST with libtorch (CPU "
      "or CUDA) and saves it as a TF.js Layers model (model.json + "
      "weights.bin) that tf.loadLayersModel() loads.",
      "mnist-train");
  app->formatter(std::make_shared<HelpFormatter>());  // before the subcommands inherit it
  app->set_version_flag("--version", generated_by());
  app->footer(
      "Exit codes: 0 ok, 1 internal error, 2 usage, 3 bad data, 4 I/O, 5 "
      "device.\nExample: mnist-train --epochs 20 --batch-size 128 "
      "--model-save-path /tmp/mnist");
  app->add_option("--log-level", options.global.log_level,
                  "Diagnostics on stderr: trace, debug, info, warn, error, off")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  app->add_flag("-q,--quiet", options.global.quiet,
                "Print only errors and results (the Evaluation lines)");
  add_train_options(*app, options.train);
  add_evaluate_command(*app, options.evaluate);
  add_predict_command(*app, options.predict);
  add_summary_command(*app, options.summary);
  add_convert_command(*app, options.convert);
  add_serve_command(*app, options.serve);
  add_report_command(*app, options.report);
  app->require_subcommand(0, 1);  // no subcommand: train, as mnist-node does
  return app;
}

int run(int argc, const char* const* argv) {
  // Over the file-size limit (ulimit -f) a write then fails with EFBIG, as on
  // a full disk with ENOSPC, and is reported like it, instead of the signal
  // killing the process with a file half written.
  std::signal(SIGXFSZ, SIG_IGN);
  Options options;
  std::unique_ptr<CLI::App> app;
  try {
    app = build_app(options);
    app->parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app->exit(e);  // --help, --version
  } catch (const CLI::Error& e) {
    return fail(ExitCode::kUsage,
                std::string(e.what()) + " (run 'mnist-train --help' for the flags)");
  }
  try {
    setup_logging(options.global);
    if (const char* coretype = std::getenv("MNIST_TRAIN_BLAS_REEXEC")) {
      spdlog::debug(
          "OpenBLAS picked generic kernels for this CPU: running with "
          "OPENBLAS_CORETYPE={}",
          coretype);
    }
    if (app->get_subcommand("serve")->parsed()) {
      return run_serve(options.serve);
    }
    if (app->got_subcommand("evaluate")) {
      return run_evaluate(options.evaluate);
    }
    if (app->got_subcommand("predict")) {
      return run_predict(options.predict);
    }
    if (app->got_subcommand("summary")) {
      return run_summary(options.summary);
    }
    if (app->got_subcommand("convert")) {
      return run_convert(options.convert);
    }
    if (app->got_subcommand("report")) {
      return run_report(options.report);
    }
    validate(options.train);
    return run_train(options.train, options.global, argc > 0 ? argv[0] : "mnist-train");
  } catch (const Interrupted& e) {
    // A stop asked for (Ctrl-C) before training began: not a failure.
    spdlog::warn("{}", e.what());
    return static_cast<int>(ExitCode::kInterrupted);
  } catch (const ConfigError& e) {
    return fail(ExitCode::kUsage, e);
  } catch (const DataError& e) {
    return fail(ExitCode::kData, e);
  } catch (const FormatError& e) {
    return fail(ExitCode::kData, e);
  } catch (const IoError& e) {
    return fail(ExitCode::kIo, e);
  } catch (const DeviceError& e) {
    return fail(ExitCode::kDevice, e);
  } catch (const c10::Error& e) {
    return fail(ExitCode::kInternal, "libtorch: " + first_line(e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return fail(ExitCode::kInternal, std::string("unexpected error: ") + e.what());
  }
}

}  // namespace mnist::cli
