// `mnist-train serve`: serves the page in web/, the saved model and a small
// MNIST test sample over HTTP (cpp-httplib) until Ctrl-C. Which files may be
// sent is decided by the core's allow-list (mnist/serve.hpp) only.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

#include <httplib.h>
#include <spdlog/spdlog.h>

#include "cli/app.hpp"
#include "mnist/data.hpp"
#include "mnist/error.hpp"
#include "mnist/serve.hpp"

namespace mnist::cli {

namespace {

constexpr size_t kMaxBodyBytes = 4096;  // GET/HEAD need none
constexpr const char* kAllowedMethods = "GET, HEAD, OPTIONS";

/// The write end of StopOnSignal's pipe, for the signal handler.
int g_stop_pipe = -1;

void on_serve_signal(int sig) {
  const char byte = static_cast<char>(sig);
  [[maybe_unused]] const auto n = write(g_stop_pipe, &byte, 1);  // async-signal-safe
}

/// Turns SIGINT/SIGTERM into a clean Server::stop(), from a watcher thread
/// (a signal may land on any thread, libtorch's too, so the handler only
/// writes to a pipe). Restores the old handlers when destroyed.
class StopOnSignal {
 public:
  explicit StopOnSignal(httplib::Server& server) {
    if (pipe(pipe_) != 0) {
      throw IoError("serve: cannot create a pipe for signal handling");
    }
    g_stop_pipe = pipe_[1];
    struct sigaction action {};
    action.sa_handler = on_serve_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &old_int_);
    sigaction(SIGTERM, &action, &old_term_);
    watcher_ = std::thread([this, &server] {
      char byte = 0;
      while (read(pipe_[0], &byte, 1) < 0 && errno == EINTR) {
      }
      if (byte == SIGINT || byte == SIGTERM) {
        spdlog::info("{}: stopping", byte == SIGINT ? "Ctrl-C" : "SIGTERM");
        server.stop();
      }
    });
  }
  StopOnSignal(const StopOnSignal&) = delete;
  StopOnSignal& operator=(const StopOnSignal&) = delete;
  ~StopOnSignal() {
    const char wake = 0;  // the server ended first: let the watcher go
    [[maybe_unused]] const auto n = write(pipe_[1], &wake, 1);
    watcher_.join();
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
    g_stop_pipe = -1;
    close(pipe_[0]);
    close(pipe_[1]);
  }

 private:
  int pipe_[2] = {-1, -1};
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
  std::thread watcher_;
};

std::optional<std::string> read_whole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return std::nullopt;
  }
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string to_string(const std::vector<uint8_t>& bytes) {
  return std::string(bytes.begin(), bytes.end());
}

void not_found(httplib::Response& res) {
  res.status = 404;
  res.set_content("404 Not Found\n", "text/plain; charset=utf-8");
}

}  // namespace

nlohmann::ordered_json to_json(const ServeOptions& o) {
  return {{"model_dir", o.model_dir}, {"host", o.host},
          {"port", o.port},           {"cors", o.cors_origin},
          {"sample", o.sample},       {"data_dir", o.data_dir},
          {"web_dir", o.web_dir}};
}

CLI::App* add_serve_command(CLI::App& app, ServeOptions& o) {
  CLI::App* cmd = app.add_subcommand(
      "serve",
      "Serve the demo page, a saved model (DIR/model.json, its weight files, "
      "history.json) and a sample of MNIST test images over HTTP; the page "
      "loads the model with tf.loadLayersModel('models/model.json')");
  cmd->add_option("--model", o.model_dir,
                  "Folder holding model.json (as written by --model-save-path)")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--host", o.host,
                  "Address to listen on (0.0.0.0 exposes it to your network)")
      ->capture_default_str();
  cmd->add_option("--port", o.port, "TCP port (0: any free port; printed)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--cors", o.cors_origin,
                  "Send CORS headers allowing ORIGIN (e.g. https://example.org, "
                  "or * without credentials) to load the model from its pages");
  cmd->add_option("--sample", o.sample, "MNIST test images served to the page")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{10000}));
  cmd->add_option("--data-dir", o.data_dir,
                  "MNIST folder for the sample (default: $MNIST_DATA_DIR, else "
                  "data/mnist in the source tree)");
  cmd->add_option("--web-dir", o.web_dir,
                  "The page's folder (default: $MNIST_WEB_DIR, else web/ in "
                  "the source tree)");
  return cmd;
}

int run_serve(const ServeOptions& o, const GlobalOptions& /*global*/) {
  const std::string web_dir = o.web_dir.empty() ? default_web_dir() : o.web_dir;
  const std::string data_dir = o.data_dir.empty() ? default_data_dir() : o.data_dir;
  auto settings = to_json(o);
  settings["web_dir"] = web_dir;
  settings["data_dir"] = data_dir;
  spdlog::debug("settings: {}", settings.dump());

  ServeTable table;
  add_web_files(table, web_dir);
  add_model_files(table, o.model_dir);
  for (const auto& [url, file] : table) {
    if (url != "/" && !resolve_request_path(url, table)) {
      spdlog::warn("{} is missing{}", file.path,
                   url.rfind("/vendor/", 0) == 0
                       ? " (run scripts/setup.sh, or npm ci in web/)"
                   : url.rfind("/models/", 0) == 0
                       ? " (train with --model-save-path first)"
                       : "");
    }
  }
  std::string sample_images;
  std::string sample_labels;
  if (o.sample > 0) {
    try {
      const MnistSample sample = load_sample(data_dir, o.sample);
      sample_images = to_string(sample.images);
      sample_labels = to_string(sample.labels);
      spdlog::info("sample: {} test images from {}", sample.labels.size(), data_dir);
    } catch (const DataError& e) {
      spdlog::warn("no test sample for the page: {}", e.what());
    }
  }

  httplib::Server server;
  server.set_payload_max_length(kMaxBodyBytes);
  server.set_read_timeout(5, 0);
  server.set_write_timeout(5, 0);
  server.set_keep_alive_max_count(1000);
  server.set_keep_alive_timeout(5);
  const std::string cors = o.cors_origin;
  server.set_post_routing_handler([cors](const httplib::Request&, httplib::Response& res) {
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_header("Cache-Control", "no-cache");
    if (!cors.empty()) {
      res.set_header("Access-Control-Allow-Origin", cors);
      res.set_header("Vary", "Origin");
      if (cors != "*") {
        res.set_header("Access-Control-Allow-Credentials", "true");
      }
    }
  });
  server.Get(".*", [&](const httplib::Request& req, httplib::Response& res) {
    const std::string path = req.target.substr(0, req.target.find_first_of("?#"));
    if (path == "/sample/images.bin" || path == "/sample/labels.bin") {
      const std::string& body = path == "/sample/images.bin" ? sample_images : sample_labels;
      if (body.empty()) {
        return not_found(res);
      }
      return res.set_content(body, "application/octet-stream");
    }
    const auto file = resolve_request_path(req.target, table);
    if (!file) {
      return not_found(res);
    }
    auto body = read_whole(file->path);
    if (!body) {
      return not_found(res);
    }
    res.set_content(std::move(*body), file->content_type.c_str());
  });
  server.Options(".*", [cors](const httplib::Request& req, httplib::Response& res) {
    res.status = 204;
    res.set_header("Allow", kAllowedMethods);
    if (!cors.empty()) {
      res.set_header("Access-Control-Allow-Methods", kAllowedMethods);
      const std::string asked = req.get_header_value("Access-Control-Request-Headers");
      if (!asked.empty() && asked.size() <= 1024) {
        res.set_header("Access-Control-Allow-Headers", asked);
      }
      res.set_header("Access-Control-Max-Age", "600");
    }
  });
  const httplib::Server::Handler refuse = [](const httplib::Request&,
                                             httplib::Response& res) {
    res.status = 405;
    res.set_header("Allow", kAllowedMethods);
    res.set_content("405 Method Not Allowed\n", "text/plain; charset=utf-8");
  };
  server.Post(".*", refuse);
  server.Put(".*", refuse);
  server.Patch(".*", refuse);
  server.Delete(".*", refuse);
  server.set_logger([](const httplib::Request& req, const httplib::Response& res) {
    spdlog::debug("{} {} -> {} ({} bytes)", req.method, req.target, res.status,
                  res.body.size());
  });

  StopOnSignal stop_on_signal(server);
  const int port = o.port == 0 ? server.bind_to_any_port(o.host)
                   : server.bind_to_port(o.host, o.port) ? o.port
                                                         : -1;
  if (port < 0) {
    throw IoError("cannot listen on " + o.host + ":" + std::to_string(o.port) +
                  " (address in use or not local? try --port 0 for any free port)");
  }
  // The URL to open: a wildcard address is reachable on loopback too.
  std::string shown = o.host == "0.0.0.0" || o.host == "::" ? "127.0.0.1" : o.host;
  if (shown.find(':') != std::string::npos) {
    shown = "[" + shown + "]";  // IPv6 literal
  }
  std::printf("Serving the model in %s at http://%s:%d/ (Ctrl-C to stop)\n",
              o.model_dir.c_str(), shown.c_str(), port);
  std::fflush(stdout);
  if (!server.listen_after_bind()) {
    throw IoError("the HTTP server on " + o.host + ":" + std::to_string(port) +
                  " stopped with an error");
  }
  spdlog::info("stopped");
  return 0;
}

}  // namespace mnist::cli
