// `mnist-train summary`: the TF.js summary table of a saved model.
#include <cstdio>

#include "cli/app.hpp"
#include "mnist/tfjs_io.hpp"

namespace mnist::cli {

CLI::App* add_summary_command(CLI::App& app, SummaryOptions& o) {
  CLI::App* cmd = app.add_subcommand("summary",
                                     "Print a saved model's summary table, as TF.js's "
                                     "model.summary() does");
  cmd->add_option("--model", o.model, "Folder holding model.json and its weight files")->required();
  return cmd;
}

int run_summary(const SummaryOptions& o) {
  const Model model = load_tfjs(o.model);
  std::fputs(summary_text(model).c_str(), stdout);
  return 0;
}

}  // namespace mnist::cli
