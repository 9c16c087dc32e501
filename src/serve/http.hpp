// The hardened HTTP transport under Server (private to src/serve/).
//
// httplib 0.11 on its own gives each connection a thread of a fixed pool (8
// threads) for as long as the client keeps it busy (a slowloris client
// sending a byte every few seconds: forever), reads request lines and headers
// of any length and number into memory, and builds multi-range answers in
// memory (1000 ranges of weights.bin: 2.4 GB). So HardenedServer runs
// connections itself: threads on demand (up to 1024; idle ones retire), and a
// stream per connection that bounds each request's size and the time it may
// take to arrive. Heads that request_refusal rejects are answered before any
// body is read, and the connection is then closed; Range is ignored.
#pragma once

#include <functional>
#include <string>

#include <httplib.h>

namespace mnist::http {

/// httplib's Server with its connections run by bounded streams on an
/// on-demand thread pool (httplib 0.11 lets a derived server replace
/// process_and_close_socket, as its SSLServer does). It installs its own
/// pre-routing, error and post-routing handlers: callers add routes, and
/// headers through set_response_headers(), not handlers of those kinds.
class HardenedServer final : public httplib::Server {
 public:
  using Warn = std::function<void(const std::string&)>;

  /// `warn` hears of trouble worked around (no thread could be started).
  /// Throws IoError if the stop eventfd cannot be made.
  explicit HardenedServer(Warn warn);
  HardenedServer(const HardenedServer&) = delete;
  HardenedServer& operator=(const HardenedServer&) = delete;
  ~HardenedServer() override;

  /// Adds headers to every response, after the transport's own
  /// (Connection, Accept-Ranges). Call before listening.
  void set_response_headers(std::function<void(httplib::Response&)> add);

  /// stop(), also waking every connection's wait. Safe from any thread.
  void stop_all();

  /// httplib listens with a backlog of 5: a burst of connections would see
  /// SYNs dropped (and retried a second later). Call after binding.
  void widen_backlog();

 private:
  bool process_and_close_socket(socket_t sock) override;
  static void on_request_head(httplib::Request& req);
  void install_handlers();

  const int stop_fd_;
  std::function<void(httplib::Response&)> add_headers_;
};

}  // namespace mnist::http
