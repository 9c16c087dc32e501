// libFuzzer harness: serve's request-path handling (percent decoding, the
// path checks and the allow-list lookup, with a symlink that leads out of
// its root). A target may only ever resolve to a file listed in the table.
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "mnist/fs_util.hpp"
#include "mnist/serve.hpp"
#include "test_util.hpp"

namespace {

struct Site {
  std::string root;
  mnist::ServeTable table;
};

const Site& site() {
  static const Site s = [] {
    Site out;
    out.root = mnist::test::process_temp_dir().path().string() + "/site";
    const std::string outside = mnist::test::process_temp_dir().path().string() + "/secret.txt";
    mkdir(out.root.c_str(), 0700);
    mkdir((out.root + "/models").c_str(), 0700);
    const uint8_t text[] = {'o', 'k'};
    mnist::test::write_bytes(out.root + "/index.html", text, sizeof text);
    mnist::test::write_bytes(out.root + "/models/model.json", text, sizeof text);
    mnist::test::write_bytes(outside, text, sizeof text);
    symlink(outside.c_str(), (out.root + "/models/weights.bin").c_str());
    mnist::add_served_file(out.table, "/", out.root, "index.html");
    mnist::add_served_file(out.table, "/index.html", out.root, "index.html");
    mnist::add_served_file(out.table, "/models/model.json", out.root + "/models", "model.json");
    mnist::add_served_file(out.table, "/models/weights.bin", out.root + "/models", "weights.bin");
    mnist::add_served_file(out.table, "/missing.js", out.root, "missing.js");
    return out;
  }();
  return s;
}

/// The harness's own statement of "plain": not absolute, and no segment
/// that is empty, "." or "..".
bool segments_are_plain(const std::string& path) {
  if (path.empty() || path.front() == '/') {
    return false;
  }
  size_t start = 0;
  while (true) {
    const size_t end = path.find('/', start);
    const std::string seg = path.substr(start, end == std::string::npos ? end : end - start);
    if (seg.empty() || seg == "." || seg == "..") {
      return false;
    }
    if (end == std::string::npos) {
      return true;
    }
    start = end + 1;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string target(reinterpret_cast<const char*>(data), size);
  const Site& s = site();
  (void)mnist::content_type_for(target);
  if (const auto decoded = mnist::percent_decode(target)) {
    if (decoded->find('\0') != std::string::npos) {
      __builtin_trap();  // an encoded NUL must be refused
    }
    if (mnist::is_plain_relative_path(*decoded) && !segments_are_plain(*decoded)) {
      __builtin_trap();  // absolute, or a "", "." or ".." segment, accepted as plain
    }
  }
  if (const auto file = mnist::resolve_request_path(target, s.table)) {
    // Only the listed files that exist and stay inside their root.
    if (file->path != s.root + "/index.html" && file->path != s.root + "/models/model.json") {
      __builtin_trap();
    }
  }
  return 0;
}
