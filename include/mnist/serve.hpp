// What `mnist-train serve` may send: an explicit allow-list of URL paths
// mapped to files, request-path checks, content types, and the MNIST sample
// the page shows. No HTTP here (the CLI owns the server); nothing prints.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mnist {

/// The folder holding the page (index.html, app.js, style.css and
/// node_modules/ with TF.js): $MNIST_WEB_DIR if set, else web/ in the source
/// tree this binary was built from.
std::string default_web_dir();

/// "text/html; charset=utf-8" for .html, "application/json" for .json,
/// "application/octet-stream" for .bin and anything unknown, ...
std::string content_type_for(const std::string& path);

/// Decodes %XX escapes (not '+', which is literal in a path). Returns
/// nullopt for a malformed escape or a NUL, encoded or raw.
std::optional<std::string> percent_decode(const std::string& text);

/// A relative path with only plain segments: not empty, no leading '/', no
/// empty, "." or ".." segment, no backslash, no control characters. What a
/// weights manifest may name.
bool is_plain_relative_path(const std::string& path);

/// One allowed file: where it lives and the folder it must stay inside once
/// symlinks are resolved.
struct ServedFile {
  std::string path;          ///< the file on disk
  std::string root;          ///< the file's real path must be inside root
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

/// The model folder under "/models/": model.json, history.json and each
/// weight file model.json's weightsManifest names, when that name is a plain
/// relative path (others are left out, so they are 404s). A missing or
/// unreadable model.json adds only model.json and history.json: the page
/// then reports why it cannot load the model.
void add_model_files(ServeTable& table, const std::string& model_dir);

/// Maps a request target (the raw, still percent-encoded path; a query
/// string is ignored) to an allowed file. nullopt (a 404) when the target is
/// not absolute, is malformed, holds a "." or ".." segment, a backslash or
/// an empty segment, is not in `table`, or names a file that is missing, not
/// a regular file, or whose real path (symlinks resolved) leaves its root.
std::optional<ServedFile> resolve_request_path(const std::string& target,
                                               const ServeTable& table);

/// Bounds on one request, which the CLI's HTTP server enforces: the request
/// line and headers together, their count, and a body (the page sends none).
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

/// The first `count` MNIST test images and labels, as the page fetches them.
struct MnistSample {
  std::vector<uint8_t> images;  ///< [N,28,28] uint8, row-major (N*784 bytes)
  std::vector<uint8_t> labels;  ///< [N] uint8 in 0..9
};

/// Reads t10k-images/labels (raw or .gz) from `data_dir`; fewer than
/// `count` records if the files hold fewer. Throws DataError.
MnistSample load_sample(const std::string& data_dir, int64_t count);

}  // namespace mnist
