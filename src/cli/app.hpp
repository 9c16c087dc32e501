// The command-line application: builds the CLI11 parser, and runs it with the
// one try/catch that turns errors into messages and exit codes.
#pragma once

#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "cli/options.hpp"
#include "mnist/tfjs_io.hpp"

namespace mnist::cli {

/// Everything the parser fills in.
struct Options {
  GlobalOptions global;
  TrainOptions train;
  EvaluateOptions evaluate;
  PredictOptions predict;
  SummaryOptions summary;
  ConvertOptions convert;
  ServeOptions serve;
  ReportOptions report;
};

/// The parser, bound to `options`. Parsing does not start any work, so
/// tests can check arguments without training.
std::unique_ptr<CLI::App> build_app(Options& options);

/// Where OpenBLAS picked generic kernels for this CPU (openblas_coretype_fix),
/// runs this program again from the start with OPENBLAS_CORETYPE set, once
/// (execv keeps the process id); otherwise, or if that fails, returns.
/// Call first thing in main(), before any thread starts.
void reexec_for_fast_blas(char** argv);

/// Parses argv, runs the command, and returns the process exit code
/// (docs/reliability.md, "Exit codes").
int run(int argc, const char* const* argv);

/// `mnist-train [train]`: options -> TrainSettings; run_train_job, printing what it reports.
/// `program` is how the binary was invoked (argv[0]), for the resume hint.
CLI::App* add_train_options(CLI::App& app, TrainOptions& options);
int run_train(const TrainOptions& options, const GlobalOptions& global, const std::string& program);

/// `mnist-train evaluate --model DIR`.
CLI::App* add_evaluate_command(CLI::App& app, EvaluateOptions& options);
int run_evaluate(const EvaluateOptions& options);

/// `mnist-train predict --model DIR IMAGE...`.
CLI::App* add_predict_command(CLI::App& app, PredictOptions& options);
int run_predict(const PredictOptions& options);

/// `mnist-train summary --model DIR`.
CLI::App* add_summary_command(CLI::App& app, SummaryOptions& options);
int run_summary(const SummaryOptions& options);

/// `mnist-train convert --model IN --out DIR [--quantize ...]`.
CLI::App* add_convert_command(CLI::App& app, ConvertOptions& options);
int run_convert(const ConvertOptions& options);

/// --quantize (uint8, uint16, float16) and --weight-shard-size BYTES, for
/// train and convert.
void add_save_format_options(CLI::App& app, std::string& quantize, uint64_t& shard_size);
/// The SaveFormat those two options name (float32, one weights.bin when unset).
SaveFormat save_format_of(const std::string& quantize, uint64_t shard_size);

/// `mnist-train serve`: the page, the model and an MNIST sample over HTTP
/// until Ctrl-C.
CLI::App* add_serve_command(CLI::App& app, ServeOptions& options);
int run_serve(const ServeOptions& options);

/// `mnist-train report RUN... --out FILE.html`.
CLI::App* add_report_command(CLI::App& app, ReportOptions& options);
int run_report(const ReportOptions& options);

}  // namespace mnist::cli
