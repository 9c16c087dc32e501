// `mnist-train serve` as a library: an HTTP server (cpp-httplib, hardened:
// bounded requests, threads on demand, refusal rules) that sends the demo
// page, a saved model and a small MNIST test sample, and nothing else. What
// may be sent is an explicit allow-list of URL paths mapped to files. It
// never prints: requests and warnings reach the caller through callbacks.
// Sources in src/serve/: http (the hardened transport), request_rules,
// routes (the allow-list), versions (consistent copies of the model as it is
// replaced), server (the routes served over HTTP).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mnist/error.hpp"

namespace mnist {

// ---- The allow-list (src/serve/routes.cpp) ---------------------------------

/// The folder holding the page (index.html, app.js, style.css and
/// node_modules/ with TF.js): $MNIST_WEB_DIR if set; else, for an installed
/// binary, share/mnist-train/web beside its bin/ folder; else web/ in the
/// source tree this binary was built from.
std::string default_web_dir();

/// "text/html; charset=utf-8" for .html, "application/json" for .json,
/// "application/octet-stream" for .bin and anything unknown, ...
std::string content_type_for(const std::string& path);

/// One allowed file: where it lives and the folder it must stay inside once
/// symlinks are resolved.
struct ServedFile {
  std::string path;  ///< the file on disk
  std::string root;  ///< the file's real path must be inside root
  std::string content_type;
};

/// URL path ("/models/model.json") -> file. Anything not listed is a 404.
using ServeTable = std::map<std::string, ServedFile>;

/// Adds `url` -> `root/relative` (content type from the extension).
void add_served_file(ServeTable& table,
                     const std::string& url,
                     const std::string& root,
                     const std::string& relative);

/// The page: "/" and "/index.html", "/app.js", "/style.css", and TF.js and
/// tfjs-vis under "/vendor/" (their dist files in web_dir/node_modules).
void add_web_files(ServeTable& table, const std::string& web_dir);

/// The model folder under "/models/": model.json, history.json,
/// metadata.json (Teachable Machine's class names, when the folder has one)
/// and each weight file model.json's weightsManifest names, as tfjs_io's
/// check_weight_path normalises it ("./weights.bin" is served as
/// "/models/weights.bin"); paths it refuses are left out (404s). A missing,
/// oversized or malformed model.json adds only model.json, history.json and
/// metadata.json: the page then reports why it cannot load the model.
void add_model_files(ServeTable& table, const std::string& model_dir);

/// `file`'s real path (symlinks resolved) is a regular file strictly inside
/// `root`'s real path.
bool file_inside(const std::string& file, const std::string& root);

/// Maps a request target (the raw, still percent-encoded path; a query
/// string is ignored) to an allowed file. nullopt (a 404) when the target is
/// not absolute, is malformed, holds a "." or ".." segment, a backslash or
/// an empty segment, is not in `table`, or names a file that is missing, not
/// a regular file, or whose real path (symlinks resolved) leaves its root.
std::optional<ServedFile> resolve_request_path(const std::string& target, const ServeTable& table);

/// The first `count` MNIST test images and labels, as the page fetches them.
struct MnistSample {
  std::vector<uint8_t> images;  ///< [N,28,28] uint8, row-major (N*784 bytes)
  std::vector<uint8_t> labels;  ///< [N] uint8 in 0..9
};

/// Reads t10k-images/labels (raw or .gz) from `data_dir`; fewer than
/// `count` records if the files hold fewer. Throws DataError.
MnistSample load_sample(const std::string& data_dir, int64_t count);

/// The test images the page shows beside a model, at its input's size and
/// colours, and where they came from.
struct ServeSample {
  std::string images;  ///< [N,H,W,C] uint8, row-major (MNIST: N*784 bytes, as load_sample)
  /// MNIST's IDX files: each image's dataset label (0..9, as the t10k file
  /// holds it; the page maps it to the model's outputs). A folder: the
  /// model's class index of each image's class folder.
  std::vector<int64_t> labels;
  int64_t height = 28;
  int64_t width = 28;
  int64_t channels = 1;
  std::string source = "mnist";  ///< "mnist" (IDX files) or "folder" (image files)
  std::string data_dir;          ///< the folder they came from
};

/// The sample's bytes are bounded: at most this many (a model of 224x224x3
/// images gets 222 of them), whatever --sample asks.
inline constexpr int64_t kMaxSampleBytes = int64_t{32} << 20;

/// The sample for the model in `model_dir`, of at most `count` images (and
/// kMaxSampleBytes), from `data_dir`, or where the model says:
/// - a model of MNIST's 28x28 digits (model_image_spec says so, or its
///   model.json cannot be loaded): the first images of the t10k IDX files in
///   `data_dir` (default: default_data_dir of the model's dataset);
/// - any other model: the test images of a folder of images (`data_dir`, or
///   else the folder its history.json's "data" record names),
///   folder_test_sample at model_image_spec's size and colours, each labelled
///   by the model's class of its folder (classes matched by name, as evaluate
///   does), decoded through the cache in `cache_dir` ("" the default); of a
///   folder without test/, the files history.json says the training held
///   out for testing (data.files.test, when data.folder is that folder).
/// Throws (the page shows the message) DataError or ConfigError when there is
/// none: an image folder for a model of MNIST's digits, IDX files for any
/// other model, no folder named and none in history.json, a folder that is
/// gone, none of its images readable.
ServeSample load_model_sample(const std::string& model_dir,
                              const std::string& data_dir,
                              int64_t count,
                              const std::string& cache_dir = "");

// ---- Model versions (src/serve/versions.cpp) -------------------------------

/// A file held open: its bytes are those it had when opened, whatever is
/// later renamed over its name (as every save of mnist-train does).
struct HeldFile {
  HeldFile(int fd, uint64_t size) : fd(fd), size(size) {}
  HeldFile(const HeldFile&) = delete;
  HeldFile& operator=(const HeldFile&) = delete;
  ~HeldFile();
  const int fd;
  const uint64_t size;
};

/// One version of the served model: model.json and the weight files it
/// names, taken together (so they belong together) and kept open.
struct ModelVersion {
  std::string id;          ///< "<server nonce>-<n>": [0-9a-f-] only
  std::string model_json;  ///< as served: each accepted manifest path P is "v/<id>/P"
  /// Accepted manifest path (normalised) -> its file; a missing file, or
  /// one whose real path leaves the folder, is absent (a 404).
  std::map<std::string, std::shared_ptr<const HeldFile>> files;
};

/// The model folder as `serve` sends it, one consistent version per
/// model.json fetched, so that a page loading a model while it is replaced
/// gets the old version's files or the new one's, never a mix.
///
/// A new version is taken when model.json or a file it names changed on
/// disk (device, inode, size, mtime or ctime), under FolderLock::share, so
/// that no mnist-train save is half done meanwhile; where the lock cannot be
/// had within 2 s (a training holding the folder as its checkpoint folder,
/// a folder this process cannot lock), model.json is read again until it is
/// unchanged across the copy and every file it names exists (5 tries).
/// Files are replaced consistently by renames (mnist-train's saves, mv, a
/// TF.js save into a fresh folder then renamed); a file rewritten in place
/// (cp over it) changes under any reader, and is not.
class ModelVersions {
 public:
  /// Keeps the `keep` newest versions (and at most 256 open files in all,
  /// the newest version whatever its count). An older version's URLs are
  /// 404s.
  explicit ModelVersions(std::string model_dir, size_t keep = 16);
  ModelVersions(const ModelVersions&) = delete;
  ModelVersions& operator=(const ModelVersions&) = delete;
  ~ModelVersions();

  /// The version now on disk; nullptr when model.json is missing, too large
  /// or not JSON (serve then sends the file as it is, for the page to say
  /// why it cannot load it). Thread-safe.
  std::shared_ptr<const ModelVersion> current();

  /// A kept version by id; nullptr if unknown or no longer kept.
  std::shared_ptr<const ModelVersion> find(const std::string& id) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ---- Request rules (src/serve/request_rules.cpp) ---------------------------

/// Decodes %XX escapes (not '+', which is literal in a path). Returns
/// nullopt for a malformed escape or a NUL, encoded or raw.
std::optional<std::string> percent_decode(const std::string& text);

/// Bounds on one request, which the server enforces: the request line and
/// headers together, their count, and a body (the page sends none).
inline constexpr size_t kMaxRequestHeadBytes = 32 * 1024;
inline constexpr size_t kMaxRequestHeaders = 100;
inline constexpr size_t kMaxRequestBodyBytes = 4096;

/// What request_refusal looks at: a parsed request head, no HTTP types.
struct RequestHead {
  std::string method;
  size_t header_count = 0;                      ///< the client's header fields
  std::vector<std::string> content_lengths;     ///< every Content-Length value
  std::vector<std::string> transfer_encodings;  ///< every Transfer-Encoding value
};

/// 0 when `head` may go on to routing, else the 4xx status to refuse it with
/// (before any body is read; the connection is then closed):
/// 431 for more than kMaxRequestHeaders headers; 400 for a Content-Length
/// that is not a plain decimal number, several that differ, or one beside a
/// Transfer-Encoding, and for any body on GET, HEAD or OPTIONS (a
/// Transfer-Encoding or a Content-Length other than 0); 413 for a
/// Content-Length over kMaxRequestBodyBytes.
int request_refusal(const RequestHead& head);

// ---- The server (src/serve/server.cpp, src/serve/http.cpp) -----------------

struct ServeConfig {
  std::string model_dir;           ///< folder with model.json (and its weights)
  std::string host = "127.0.0.1";  ///< loopback unless asked otherwise
  int port = 8080;                 ///< 0: any free port (bind() says which)
  std::string cors_origin;         ///< empty: no CORS headers
  int64_t sample = 200;            ///< test images served to the page (load_model_sample)
  std::string data_dir;            ///< for the sample: IDX files or a folder of images; empty:
                                   ///< load_model_sample's default for the model
  std::string cache_dir;           ///< a folder sample's decode cache; empty: the default
  std::string web_dir;             ///< empty: default_web_dir()
};

/// One answered request, for a log.
struct ServedRequest {
  std::string method;
  std::string target;
  int status = 0;
  size_t body_bytes = 0;  ///< bytes of a body held in memory (streamed files: 0)
};

struct ServeCallbacks {
  /// After every answered request (from the connection's thread).
  std::function<void(const ServedRequest&)> on_request;
  /// Something the page will miss (a listed file that does not exist, no
  /// test sample), or trouble the server works around (no thread left).
  std::function<void(const std::string& message, Remedy remedy)> on_warning;
};

/// The server. Routes: GET and HEAD of every allow-listed file (small files
/// whole, large ones streamed from disk; Range ignored); the model from
/// ModelVersions: "/models/model.json" names its weights as
/// "/models/v/<id>/<path>", answered from that version's open files
/// (404 once it is no longer kept), and "/models/<path>" from the current
/// version; the test sample (load_model_sample): "/sample/images.bin"
/// ([N,H,W,C] uint8), "/sample/labels.bin" (N uint8; absent when a label
/// is over 255) and "/sample/info.json" ({"count", "height", "width",
/// "channels", "source", "labels"}, or {"count": 0, "reason"} saying why
/// there is none), OPTIONS (CORS preflight when
/// cors_origin is set), 405 for other methods, 404 for everything else.
/// Every response carries no-cache, nosniff and Accept-Ranges: none. Each
/// request is bounded (kMaxRequest*; 10 s to arrive, 5 s of silence) and
/// refused with a 4xx as request_refusal says; threads start on demand (8
/// to 1024) and idle ones retire.
class Server {
 public:
  /// Resolves the folders, builds the allow-list (a warning for each listed
  /// file that is missing) and loads the test sample (a warning if it
  /// cannot, whose message info.json gives the page). Throws IoError if the server's own resources
  /// cannot be made.
  Server(const ServeConfig& config, ServeCallbacks callbacks);
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  ~Server();

  /// The configuration with web_dir and data_dir resolved.
  const ServeConfig& config() const;
  /// Test images in the sample (0 when none could be read).
  size_t sample_size() const;
  /// The sample (its images' shape, source and folder).
  const ServeSample& sample() const;

  /// Binds to config().host and port; returns the port (the one chosen for
  /// port 0). Throws IoError when it cannot listen there.
  int bind();
  /// Serves until stop(). Throws IoError if the server fails.
  void listen();
  /// Makes listen() return, from any thread, and wakes every connection.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mnist
