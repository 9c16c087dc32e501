// Server: the allow-list and the test sample served over the hardened
// transport, with CORS and caching headers, small files whole and large
// ones streamed from disk.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "mnist/data.hpp"
#include "mnist/error.hpp"
#include "mnist/fs_util.hpp"
#include "mnist/serve.hpp"
#include "mnist/tfjs_io.hpp"
#include "serve/http.hpp"

namespace mnist {

namespace {

constexpr const char* kAllowedMethods = "GET, HEAD, OPTIONS";
/// Files up to this size are read whole (and may be compressed); larger ones
/// are streamed from disk, kChunkBytes at a time.
constexpr size_t kInlineFileBytes = 64 * 1024;
constexpr size_t kChunkBytes = 256 * 1024;

/// Answers with an open file: read whole when small (httplib may then
/// compress it), else streamed a chunk at a time, so that many concurrent
/// downloads hold little memory. False if it cannot be read.
bool serve_held(const std::shared_ptr<const HeldFile>& file,
                const std::string& content_type,
                httplib::Response& res) {
  const auto size = static_cast<size_t>(file->size);
  if (size <= kInlineFileBytes) {
    std::string body(size, '\0');
    if (size > 0 && ::pread(file->fd, body.data(), size, 0) != static_cast<ssize_t>(size)) {
      return false;
    }
    res.set_content(std::move(body), content_type.c_str());
    return true;
  }
  res.set_content_provider(
      size, content_type, [file](size_t offset, size_t length, httplib::DataSink& sink) {
        const size_t want = std::min(length, kChunkBytes);
        const std::unique_ptr<char[]> chunk(new char[want]);
        const ssize_t n = ::pread(file->fd, chunk.get(), want, static_cast<off_t>(offset));
        return n > 0 && sink.write(chunk.get(), static_cast<size_t>(n));
      });
  return true;
}

/// Answers with the file at `path` as it is now (serve_held).
bool serve_file(const std::string& path, const std::string& content_type, httplib::Response& res) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return false;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return false;
  }
  return serve_held(std::make_shared<const HeldFile>(fd, static_cast<uint64_t>(st.st_size)),
                    content_type, res);
}

/// "/models/v/<id>/<path>" -> {id, path}; nullopt for any other target.
std::optional<std::pair<std::string, std::string>> versioned_target(const std::string& target) {
  static const std::string kPrefix = "/models/v/";
  const auto path = percent_decode(target.substr(0, target.find_first_of("?#")));
  if (!path || path->rfind(kPrefix, 0) != 0) {
    return std::nullopt;
  }
  const size_t slash = path->find('/', kPrefix.size());
  if (slash == std::string::npos) {
    return std::nullopt;
  }
  return std::make_pair(path->substr(kPrefix.size(), slash - kPrefix.size()),
                        path->substr(slash + 1));
}

/// Answers with `body`, which outlives the server, without copying it.
void serve_bytes(const std::string& body, httplib::Response& res) {
  res.set_content_provider(body.size(), "application/octet-stream",
                           [&body](size_t offset, size_t length, httplib::DataSink& sink) {
                             return sink.write(body.data() + offset, std::min(length, kChunkBytes));
                           });
}

void not_found(httplib::Response& res) {
  res.status = 404;
  res.set_content("404 Not Found\n", "text/plain; charset=utf-8");
}

/// The hint for a listed file that is missing, by where it is served.
void warn_missing(const ServeCallbacks& callbacks, const std::string& url, const ServedFile& file) {
  if (!callbacks.on_warning) {
    return;
  }
  if (url.rfind("/vendor/", 0) == 0) {
    callbacks.on_warning(file.path + " is missing (run scripts/setup.sh, or npm ci in web/)",
                         Remedy::kNone);
  } else {
    callbacks.on_warning(file.path + " is missing",
                         url.rfind("/models/", 0) == 0 ? Remedy::kSaveModelFirst : Remedy::kNone);
  }
}

}  // namespace

struct Server::Impl {
  ServeConfig config;
  ServeCallbacks callbacks;
  ServeTable table;
  std::unique_ptr<ModelVersions> versions;
  ServeSample sample;         ///< images empty when there is none
  std::string sample_labels;  ///< [N] uint8; empty when a label is over 255
  std::string sample_info;    ///< info.json
  int port = 0;               ///< once bound
  http::HardenedServer http;

  Impl(const ServeConfig& c, ServeCallbacks cb)
      : config(c), callbacks(std::move(cb)), http([this](const std::string& message) {
          if (callbacks.on_warning) {
            callbacks.on_warning(message, Remedy::kNone);
          }
        }) {}

  void routes();
  /// The model's files from `versions`; false when `target` is not one.
  bool serve_model(const std::string& target, httplib::Response& res);
};

bool Server::Impl::serve_model(const std::string& target, httplib::Response& res) {
  static const std::string kModels = "/models/";
  if (const auto versioned = versioned_target(target)) {
    std::shared_ptr<const HeldFile> held;
    if (const auto version = versions->find(versioned->first)) {
      const auto file = version->files.find(versioned->second);
      if (file != version->files.end()) {
        held = file->second;
      }
    }
    if (!held || !serve_held(held, content_type_for(versioned->second), res)) {
      not_found(res);
    }
    return true;
  }
  const auto path = percent_decode(target.substr(0, target.find_first_of("?#")));
  if (!path || path->rfind(kModels, 0) != 0) {
    return false;
  }
  const std::string relative = path->substr(kModels.size());
  if (relative != kModelJsonFile && !is_plain_relative_path(relative)) {
    return false;
  }
  const auto version = versions->current();
  if (!version) {
    return false;  // model.json as it is on disk, for the page to report
  }
  if (relative == kModelJsonFile) {
    res.set_content(version->model_json, "application/json");
    return true;
  }
  const auto file = version->files.find(relative);
  if (file == version->files.end()) {
    return false;
  }
  if (!serve_held(file->second, content_type_for(relative), res)) {
    not_found(res);
  }
  return true;
}

void Server::Impl::routes() {
  http.Get(".*", [this](const httplib::Request& req, httplib::Response& res) {
    const std::string path = req.target.substr(0, req.target.find_first_of("?#"));
    if (path == "/sample/images.bin" || path == "/sample/labels.bin") {
      const std::string& body = path == "/sample/images.bin" ? sample.images : sample_labels;
      return body.empty() ? not_found(res) : serve_bytes(body, res);
    }
    if (path == "/sample/info.json") {
      res.set_content(sample_info, "application/json");
      return;
    }
    if (serve_model(req.target, res)) {
      return;
    }
    const auto file = resolve_request_path(req.target, table);
    if (!file || !serve_file(file->path, file->content_type, res)) {
      not_found(res);
    }
  });
  const std::string cors = config.cors_origin;
  http.Options(".*", [cors](const httplib::Request& req, httplib::Response& res) {
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
  const httplib::Server::Handler refuse = [](const httplib::Request&, httplib::Response& res) {
    res.status = 405;
    res.set_header("Allow", kAllowedMethods);
    res.set_content("405 Method Not Allowed\n", "text/plain; charset=utf-8");
  };
  http.Post(".*", refuse);
  http.Put(".*", refuse);
  http.Patch(".*", refuse);
  http.Delete(".*", refuse);
  http.set_response_headers([cors](httplib::Response& res) {
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
  http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    if (callbacks.on_request) {
      callbacks.on_request({req.method, req.target, res.status, res.body.size()});
    }
  });
}

Server::Server(const ServeConfig& config, ServeCallbacks callbacks)
    : impl_(std::make_unique<Impl>(config, std::move(callbacks))) {
  ServeConfig& c = impl_->config;
  if (c.web_dir.empty()) {
    c.web_dir = default_web_dir();
  }
  add_web_files(impl_->table, c.web_dir);
  add_model_files(impl_->table, c.model_dir);
  impl_->versions = std::make_unique<ModelVersions>(c.model_dir);
  for (const auto& [url, file] : impl_->table) {
    if (url != "/" && !resolve_request_path(url, impl_->table)) {
      warn_missing(impl_->callbacks, url, file);
    }
  }
  nlohmann::ordered_json info = {{"count", 0}};
  if (c.sample > 0) {
    try {
      impl_->sample = load_model_sample(c.model_dir, c.data_dir, c.sample, c.cache_dir);
      const ServeSample& s = impl_->sample;
      if (std::all_of(s.labels.begin(), s.labels.end(), [](int64_t l) { return l < 256; })) {
        impl_->sample_labels.assign(s.labels.begin(), s.labels.end());
      }
      info = {{"count", s.labels.size()}, {"height", s.height}, {"width", s.width},
              {"channels", s.channels},   {"source", s.source}, {"labels", s.labels}};
      c.data_dir = s.data_dir;
    } catch (const Error& e) {
      impl_->sample = ServeSample();
      info["reason"] = e.what();
      if (impl_->callbacks.on_warning) {
        impl_->callbacks.on_warning(std::string("no test sample for the page: ") + e.what(),
                                    e.remedy());
      }
    }
  } else {
    info["reason"] = "the server was started with no sample (--sample 0)";
  }
  // Folder names need not be UTF-8: bytes that are not are sent as U+FFFD.
  impl_->sample_info = info.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  impl_->routes();
}

Server::~Server() = default;

const ServeConfig& Server::config() const { return impl_->config; }

size_t Server::sample_size() const { return impl_->sample.labels.size(); }

const ServeSample& Server::sample() const { return impl_->sample; }

int Server::bind() {
  const ServeConfig& c = impl_->config;
  const int port = c.port == 0                                ? impl_->http.bind_to_any_port(c.host)
                   : impl_->http.bind_to_port(c.host, c.port) ? c.port
                                                              : -1;
  if (port < 0) {
    throw IoError("cannot listen on " + c.host + ":" + std::to_string(c.port) +
                      " (address in use or not local?)",
                  Remedy::kAnyPort);
  }
  impl_->http.widen_backlog();
  impl_->port = port;
  return port;
}

void Server::listen() {
  if (!impl_->http.listen_after_bind()) {
    throw IoError("the HTTP server on " + impl_->config.host + ":" + std::to_string(impl_->port) +
                  " stopped with an error");
  }
}

void Server::stop() { impl_->http.stop_all(); }

}  // namespace mnist
