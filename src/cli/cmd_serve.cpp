// `mnist-train serve`: maps the flags onto the core's Server (mnist/serve.hpp),
// logs what it reports, and serves until Ctrl-C.
#include <csignal>
#include <cstdio>

#include <spdlog/spdlog.h>

#include "cli/app.hpp"
#include "cli/shared.hpp"
#include "cli/stop_signal.hpp"
#include "mnist/serve.hpp"

namespace mnist::cli {

CLI::App* add_serve_command(CLI::App& app, ServeOptions& o) {
  CLI::App* cmd =
      app.add_subcommand("serve",
                         "Serve the demo page, a saved model (DIR/model.json, its weight files, "
                         "history.json, metadata.json) and a sample of test images at the "
                         "model's size and colours over HTTP; the page "
                         "loads the model with tf.loadLayersModel('models/model.json')");
  cmd->add_option("--model", o.model_dir,
                  "Folder holding model.json (as written by --model-save-path)")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--host", o.host, "Address to listen on (0.0.0.0 exposes it to your network)")
      ->capture_default_str();
  cmd->add_option("--port", o.port, "TCP port (0: any free port; printed)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--cors", o.cors_origin,
                  "Send CORS headers allowing ORIGIN (e.g. https://example.org, "
                  "or * without credentials) to load the model from its pages");
  cmd->add_option("--sample", o.sample,
                  "Test images served to the page (fewer where they would pass 32 MiB)")
      ->capture_default_str()
      ->check(integer_in(0, 10000));
  cmd->add_option("--data-dir", o.data_dir,
                  "Where the sample comes from: the folder of test IDX files, for a model of "
                  "MNIST's 28x28 digits (default: that of the model's dataset: "
                  "$MNIST_DATA_DIR, else data/mnist in the source tree, for MNIST; "
                  "/usr/share/datasets/fashion-mnist for Fashion-MNIST); or a folder of images, "
                  "one subfolder per class, for any other model (its test/ subfolder when it "
                  "has one, else all; default: the folder its history.json names)");
  cmd->add_option("--cache-dir", o.cache_dir,
                  "Where a folder's decoded images are cached (default: as train's)");
  cmd->add_option("--web-dir", o.web_dir,
                  "The page's folder (default: $MNIST_WEB_DIR, else share/mnist-train/web "
                  "of an installed copy, else web/ in the source tree)");
  return cmd;
}

int run_serve(const ServeOptions& o) {
  ServeConfig config;
  config.model_dir = o.model_dir;
  config.host = o.host;
  config.port = o.port;
  config.cors_origin = o.cors_origin;
  config.sample = o.sample;
  config.data_dir = o.data_dir;
  config.cache_dir = o.cache_dir;
  config.web_dir = o.web_dir;
  ServeCallbacks callbacks;
  callbacks.on_request = [](const ServedRequest& r) {
    spdlog::debug("{} {} -> {} ({} bytes)", r.method, r.target, r.status, r.body_bytes);
  };
  callbacks.on_warning = [](const std::string& message, Remedy remedy) {
    spdlog::warn("{}{}", message, remedy_hint(remedy));
  };
  Server server(config, callbacks);
  auto settings = to_json(o);
  settings["web_dir"] = server.config().web_dir;
  settings["data_dir"] = server.config().data_dir;
  spdlog::debug("settings: {}", settings.dump());
  if (server.sample_size() > 0) {
    const ServeSample& sample = server.sample();
    spdlog::info("sample: {} test images from {} ({}x{}x{})", server.sample_size(),
                 server.config().data_dir, sample.height, sample.width, sample.channels);
  }

  const StopOnSignal stop_on_signal([&server](int signal) {
    spdlog::info("{}: stopping", signal == SIGINT ? "Ctrl-C" : "SIGTERM");
    server.stop();
  });
  const int port = server.bind();
  // The URL to open: a wildcard address is reachable on loopback too.
  std::string shown = o.host == "0.0.0.0" || o.host == "::" ? "127.0.0.1" : o.host;
  if (shown.find(':') != std::string::npos) {
    shown = "[" + shown + "]";  // IPv6 literal
  }
  std::printf("Serving the model in %s at http://%s:%d/ (Ctrl-C to stop)\n", o.model_dir.c_str(),
              shown.c_str(), port);
  std::fflush(stdout);
  server.listen();
  spdlog::info("stopped");
  return 0;
}

}  // namespace mnist::cli
