// `mnist-train report RUN... --out FILE.html`: one self-contained HTML page
// of training runs (docs/report.md): each run's curves, evaluation,
// parameters and sizes, and, for several runs, their final figures with
// mean and spread and their curves overlaid.
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include "cli/app.hpp"
#include "cli/shared.hpp"
#include "mnist/device.hpp"
#include "mnist/fs_util.hpp"
#include "mnist/report.hpp"
#include "mnist/tfjs_io.hpp"

namespace mnist::cli {

CLI::App* add_report_command(CLI::App& app, ReportOptions& o) {
  CLI::App* cmd = app.add_subcommand(
      "report",
      "Write one self-contained HTML page of training runs: learning curves, confusion matrix, "
      "per-class precision, recall and F1, the most confidently wrong test images, parameters "
      "and sizes per quantization; several runs compared (mean and spread, curves overlaid)");
  cmd->add_option("runs", o.runs,
                  "Run folders: each a folder a training saved its model into "
                  "(--model-save-path: model.json, weights, history.json)")
      ->required();
  cmd->add_option("--out", o.out, "The HTML file to write")->required();
  cmd->add_option(
      "--data-dir", o.data_dir,
      "The test images for every run: MNIST's IDX files or a folder of images (default: "
      "what each run's history.json says it was trained on)");
  cmd->add_option("--cache-dir", o.cache_dir,
                  "Where a folder's decoded images are cached (default: as train's)");
  add_count_option(*cmd, "--test-limit", o.test_limit,
                   "Evaluate on the first N test records only (0: all)", 0);
  add_count_option(*cmd, "--wrong", o.wrong,
                   "How many of the most confidently wrong test images to show per run", 0, 1000);
  return cmd;
}

namespace {

std::string names_text(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < 5; ++i) {
    out += (i == 0 ? "" : ", ") + names[i];
  }
  return out + (names.size() > 5 ? ", ..." : "");
}

}  // namespace

int run_report(const ReportOptions& o) {
  configure_cpu_threads(0);
  // Where the page goes is checked first: the evaluations may take minutes.
  std::error_code ec;
  if (std::filesystem::is_directory(o.out, ec)) {
    throw ConfigError("--out " + o.out + ": is a folder; give the HTML file to write");
  }
  const std::string folder = std::filesystem::path(o.out).parent_path().string();
  ensure_writable_dir(folder.empty() ? "." : folder, "report's folder");
  // Every run is checked and loaded before any is evaluated: a wrong folder
  // fails in a second, not after the others' evaluations.
  for (const std::string& run : o.runs) {
    check_run_folder(run);
  }
  std::vector<Model> models;
  std::vector<LabelSet> labels;
  std::vector<std::string> first_names;
  for (const std::string& run : o.runs) {
    models.push_back(load_tfjs(run));
    labels.push_back(require_classifier(models.back(), run));
    const std::vector<std::string> names =
        class_names_of(models.back()->spec().metadata, static_cast<int64_t>(labels.back().size()));
    if (first_names.empty()) {
      first_names = names;
    } else if (names != first_names) {
      throw ConfigError(run + ": its " + std::to_string(names.size()) + " classes (" +
                        names_text(names) + ") differ from " + o.runs.front() + "'s " +
                        std::to_string(first_names.size()) + " (" + names_text(first_names) +
                        "); a report compares runs of one set of classes");
    }
  }
  ReportSettings settings;
  settings.data_dir = o.data_dir;
  settings.test_limit = o.test_limit;
  settings.wrong = o.wrong;
  settings.decode.cache_dir = o.cache_dir;
  std::vector<RunReport> runs;
  for (size_t i = 0; i < o.runs.size(); ++i) {
    spdlog::info("{}: evaluating the model", o.runs[i]);
    runs.push_back(make_run_report(o.runs[i], models[i], labels[i], settings));
    const RunReport& r = runs.back();
    if (r.bad_images > 0) {
      spdlog::warn("{}: {} images cannot be read and are not counted", r.data_dir, r.bad_images);
    }
    spdlog::info("{}: {} test images of {}: accuracy {:.4f}", o.runs[i], r.test.count, r.data_dir,
                 r.test.accuracy);
  }
  const std::string html = report_html(runs);
  write_file_atomic(o.out, html);
  std::printf("Report of %zu run%s written to %s (%zu KiB)\n", runs.size(),
              runs.size() == 1 ? "" : "s", o.out.c_str(), (html.size() + 1023) / 1024);
  return 0;
}

}  // namespace mnist::cli
