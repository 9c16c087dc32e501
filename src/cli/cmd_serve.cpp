// `mnist-train serve`: serves the page in web/, the saved model and a small
// MNIST test sample over HTTP (cpp-httplib) until Ctrl-C. Which files may be
// sent is decided by the core's allow-list (mnist/serve.hpp) only.
//
// httplib 0.11 on its own gives each connection a thread of a fixed pool (8
// here) for as long as the client keeps it busy (a slowloris client sending
// a byte every few seconds: forever), reads request lines and headers of any
// length and number into memory, and builds multi-range answers in memory
// (1000 ranges of weights.bin: 2.4 GB). So HardenedServer runs connections
// itself: threads on demand (ElasticPool), and a Connection stream that
// bounds each request's size and the time it may take to arrive. Heads that
// request_refusal rejects are answered before any body is read; Range is
// ignored; large files are streamed from disk.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include <httplib.h>
#include <spdlog/spdlog.h>

#include "cli/app.hpp"
#include "mnist/data.hpp"
#include "mnist/error.hpp"
#include "mnist/serve.hpp"

namespace mnist::cli {

namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kAllowedMethods = "GET, HEAD, OPTIONS";
/// The most a request (line, headers and body) may send.
constexpr size_t kMaxRequestBytes = kMaxRequestHeadBytes + kMaxRequestBodyBytes;
/// The longest silence while a request arrives or a response leaves.
constexpr auto kIoTimeout = std::chrono::seconds(5);
/// How long an idle connection waits for its next request.
constexpr time_t kKeepAliveSeconds = 5;
constexpr size_t kKeepAliveMaxRequests = 1000;
/// A whole request must arrive within this of its first byte (slowloris
/// clients send a byte now and then, never a whole request)...
constexpr auto kRequestDeadline = std::chrono::seconds(10);
/// ... and its response be taken within this (2.4 MB at 40 KB/s).
constexpr auto kResponseDeadline = std::chrono::seconds(60);
/// After refusing a request, how long its unread rest is drained so that
/// closing does not reset the connection before the client reads why.
constexpr auto kLingerTime = std::chrono::milliseconds(500);
/// Threads: each connection holds one while it lasts; idle ones retire.
constexpr size_t kMinThreads = 8;
constexpr size_t kMaxThreads = 1024;
constexpr auto kIdleThreadLife = std::chrono::seconds(3);
/// Files up to this size are read whole (and may be compressed); larger ones
/// are streamed from disk, kChunkBytes at a time.
constexpr size_t kInlineFileBytes = 64 * 1024;
constexpr size_t kChunkBytes = 256 * 1024;

/// httplib's TaskQueue with threads started on demand up to `max_threads`
/// and retired after `idle_life` without work, down to `min_threads`.
class ElasticPool final : public httplib::TaskQueue {
 public:
  ElasticPool(size_t min_threads, size_t max_threads, Clock::duration idle_life)
      : min_(min_threads), max_(max_threads), idle_life_(idle_life) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (size_t i = 0; i < min_; ++i) {
      spawn_locked();
    }
  }
  ElasticPool(const ElasticPool&) = delete;
  ElasticPool& operator=(const ElasticPool&) = delete;
  ~ElasticPool() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    std::vector<std::thread> retired;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      jobs_.push_back(std::move(fn));
      if (jobs_.size() > idle_ && threads_.size() < max_) {
        try {
          spawn_locked();
        } catch (const std::system_error& e) {  // out of threads: queue it
          spdlog::warn("serve: cannot start a thread ({}); {} running", e.what(),
                       threads_.size());
        }
      }
      retired.swap(retired_);
    }
    cond_.notify_one();
    for (auto& t : retired) {
      t.join();
    }
  }

  /// Runs what is queued, then ends every thread.
  void shutdown() override {
    std::unique_lock<std::mutex> lock(mutex_);
    shutdown_ = true;
    cond_.notify_all();
    exited_.wait(lock, [this] { return threads_.empty(); });
    std::vector<std::thread> retired;
    retired.swap(retired_);
    lock.unlock();
    for (auto& t : retired) {
      t.join();
    }
  }

 private:
  void spawn_locked() {
    const size_t id = next_id_++;
    threads_.emplace(id, std::thread([this, id] { work(id); }));
  }

  void work(size_t id) {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      ++idle_;
      const bool woken = cond_.wait_for(
          lock, idle_life_, [this] { return shutdown_ || !jobs_.empty(); });
      --idle_;
      if (!jobs_.empty()) {
        {
          std::function<void()> fn = std::move(jobs_.front());
          jobs_.pop_front();
          lock.unlock();
          fn();
        }
        lock.lock();
        continue;
      }
      if (shutdown_ || (!woken && threads_.size() > min_)) {
        break;
      }
    }
    // A thread's stack stays mapped until it is joined: this one joins the
    // threads that retired before it, and is joined by the next to retire,
    // the next enqueue() or shutdown().
    std::vector<std::thread> earlier;
    earlier.swap(retired_);
    const auto self = threads_.find(id);
    retired_.push_back(std::move(self->second));
    threads_.erase(self);
    exited_.notify_all();
    lock.unlock();
    for (auto& t : earlier) {
      t.join();
    }
  }

  const size_t min_;
  const size_t max_;
  const Clock::duration idle_life_;
  std::mutex mutex_;
  std::condition_variable cond_;
  std::condition_variable exited_;
  std::deque<std::function<void()>> jobs_;
  std::map<size_t, std::thread> threads_;
  std::vector<std::thread> retired_;
  size_t idle_ = 0;
  size_t next_id_ = 0;
  bool shutdown_ = false;
};

/// Why a connection stopped being read.
enum class Trouble { kNone, kTooLarge, kTooSlow, kClosed };

/// One client connection as an httplib Stream, kept across its keep-alive
/// requests (so pipelined bytes are not lost). Per request it hands httplib
/// at most kMaxRequestBytes and fails reads past kRequestDeadline or after
/// kIoTimeout of silence; writes fail after kIoTimeout without progress or
/// past kResponseDeadline. Every wait also ends when the server stops.
class Connection final : public httplib::Stream {
 public:
  Connection(int sock, int stop_fd) : sock_(sock), stop_fd_(stop_fd) {}

  /// Waits at most `idle` for the next request and starts its bounds; false
  /// when none comes (or the server stops).
  bool next_request(Clock::duration idle) {
    if (buffered() == 0 && !wait_for(POLLIN, Clock::now() + idle)) {
      return false;
    }
    const auto now = Clock::now();
    budget_ = kMaxRequestBytes;
    read_until_ = now + kRequestDeadline;
    write_until_ = now + kResponseDeadline;
    request_bytes_ = 0;
    written_ = 0;
    refusal_ = 0;
    close_after_ = false;
    return true;
  }

  bool is_readable() const override {
    return buffered() > 0 || wait_for(POLLIN, std::min(read_until_, Clock::now() + kIoTimeout));
  }
  bool is_writable() const override {
    return trouble_ == Trouble::kNone &&
           wait_for(POLLOUT, std::min(write_until_, Clock::now() + kIoTimeout));
  }

  ssize_t read(char* ptr, size_t size) override {
    if (size == 0) {
      return 0;
    }
    if (budget_ == 0) {
      trouble_ = Trouble::kTooLarge;
      return -1;
    }
    if (buffered() == 0) {
      const auto until = std::min(read_until_, Clock::now() + kIoTimeout);
      ssize_t n = -1;
      while (n < 0) {
        if (!wait_for(POLLIN, until)) {
          trouble_ = Trouble::kTooSlow;
          return -1;
        }
        n = recv(sock_, buffer_.data(), buffer_.size(), MSG_DONTWAIT);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
          trouble_ = Trouble::kClosed;
          return -1;
        }
      }
      if (n == 0) {
        trouble_ = Trouble::kClosed;
        return 0;
      }
      begin_ = 0;
      end_ = static_cast<size_t>(n);
    }
    const size_t n = std::min({size, buffered(), budget_});
    std::memcpy(ptr, buffer_.data() + begin_, n);
    begin_ += n;
    budget_ -= n;
    request_bytes_ += n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    const auto until = std::min(write_until_, Clock::now() + kIoTimeout);
    for (;;) {
      if (!wait_for(POLLOUT, until)) {
        trouble_ = Trouble::kTooSlow;
        return -1;
      }
      const ssize_t n = send(sock_, ptr, size, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n >= 0) {
        written_ += static_cast<size_t>(n);
        return n;
      }
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        trouble_ = Trouble::kClosed;
        return -1;
      }
    }
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    address(getpeername, ip, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    address(getsockname, ip, port);
  }
  socket_t socket() const override { return sock_; }

  Trouble trouble() const { return trouble_; }
  /// The 4xx status request_refusal gave this request, or 0.
  int refusal() const { return refusal_; }
  void refuse(int status) { refusal_ = status; }
  /// Closes the connection after this response.
  void close_after() { close_after_ = true; }
  bool closing() const {
    return trouble_ != Trouble::kNone || refusal_ != 0 || close_after_;
  }

  /// When httplib gave up on a request line (too long, too slow) without
  /// answering: answers 414 or 408 itself.
  void answer_unanswered() {
    if (written_ > 0 || request_bytes_ == 0 ||
        (trouble_ != Trouble::kTooLarge && trouble_ != Trouble::kTooSlow)) {
      return;
    }
    const char* answer = trouble_ == Trouble::kTooLarge
                             ? "HTTP/1.1 414 URI Too Long\r\n"
                             : "HTTP/1.1 408 Request Timeout\r\n";
    const std::string text = std::string(answer) +
                             "Connection: close\r\nContent-Length: 0\r\n\r\n";
    write_until_ = Clock::now() + kIoTimeout;
    [[maybe_unused]] const auto n = write(text.data(), text.size());
  }

  /// Stops sending, then reads and drops what the client still sends (at
  /// most kLingerTime), so that the close does not reset the connection
  /// before the client has read the answer.
  void linger() {
    shutdown(sock_, SHUT_WR);
    const auto until = Clock::now() + kLingerTime;
    size_t dropped = 0;
    while (dropped < (1u << 20) && wait_for(POLLIN, until)) {
      const ssize_t n = recv(sock_, buffer_.data(), buffer_.size(), MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        break;
      }
      dropped += n > 0 ? static_cast<size_t>(n) : 0;
    }
  }

 private:
  size_t buffered() const { return end_ - begin_; }

  /// Waits until `events` are ready on the socket (or it failed); false at
  /// `until` or when the server stops.
  bool wait_for(short events, Clock::time_point until) const {
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - Clock::now());
      if (left.count() <= 0) {
        return false;
      }
      std::array<pollfd, 2> fds{{{sock_, events, 0}, {stop_fd_, POLLIN, 0}}};
      const int ready = poll(fds.data(), fds.size(), static_cast<int>(left.count()) + 1);
      if (ready < 0 && errno != EINTR) {
        return false;
      }
      if (ready > 0) {
        return fds[1].revents == 0 && fds[0].revents != 0;
      }
    }
  }

  template <typename Query>
  void address(Query query, std::string& ip, int& port) const {
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    if (query(sock_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      return;
    }
    char text[INET6_ADDRSTRLEN] = {};
    if (addr.ss_family == AF_INET) {
      const auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
      inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
      port = ntohs(in->sin_port);
    } else if (addr.ss_family == AF_INET6) {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
      inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text));
      port = ntohs(in6->sin6_port);
    }
    ip = text;
  }

  const int sock_;
  const int stop_fd_;
  std::array<char, 16 * 1024> buffer_{};
  size_t begin_ = 0;
  size_t end_ = 0;
  size_t budget_ = 0;
  size_t request_bytes_ = 0;
  size_t written_ = 0;
  Clock::time_point read_until_{};
  Clock::time_point write_until_{};
  Trouble trouble_ = Trouble::kNone;
  int refusal_ = 0;
  bool close_after_ = false;
};

/// The connection this thread serves, for the server's handlers.
thread_local Connection* t_connection = nullptr;

/// httplib's Server with its connections run by Connection streams on an
/// ElasticPool (httplib 0.11 lets a derived server replace
/// process_and_close_socket, as its SSLServer does).
class HardenedServer final : public httplib::Server {
 public:
  HardenedServer() : stop_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (stop_fd_ < 0) {
      throw IoError("serve: cannot create an eventfd");
    }
    new_task_queue = [] {
      return new ElasticPool(kMinThreads, kMaxThreads, kIdleThreadLife);
    };
    set_keep_alive_max_count(kKeepAliveMaxRequests);
    set_keep_alive_timeout(kKeepAliveSeconds);
    set_payload_max_length(kMaxRequestBodyBytes);
  }
  HardenedServer(const HardenedServer&) = delete;
  HardenedServer& operator=(const HardenedServer&) = delete;
  ~HardenedServer() override { close(stop_fd_); }

  /// stop(), also waking every connection's wait.
  void stop_all() {
    const uint64_t one = 1;
    [[maybe_unused]] const auto n = ::write(stop_fd_, &one, sizeof(one));
    stop();
  }

  /// httplib listens with a backlog of 5: a burst of connections would see
  /// SYNs dropped (and retried a second later). Call after binding.
  void widen_backlog() { ::listen(svr_sock_, SOMAXCONN); }

 private:
  bool process_and_close_socket(socket_t sock) override {
    // httplib writes a response's head and body separately: without
    // TCP_NODELAY, Nagle's algorithm and delayed ACKs stall keep-alive
    // responses by ~40 ms.
    const int one = 1;
    setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    Connection connection(sock, stop_fd_);
    t_connection = &connection;
    bool ret = false;
    for (size_t left = keep_alive_max_count_; left > 0 && svr_sock_ != INVALID_SOCKET;
         --left) {
      if (!connection.next_request(std::chrono::seconds(keep_alive_timeout_sec_))) {
        break;
      }
      bool closed = false;
      ret = process_request(connection, left == 1, closed, on_request_head);
      if (!ret) {
        connection.answer_unanswered();
      }
      if (!ret || closed || connection.closing()) {
        break;
      }
    }
    t_connection = nullptr;
    if (connection.closing()) {
      connection.linger();
    }
    ::shutdown(sock, SHUT_RDWR);
    close(sock);
    return ret;
  }

  /// Called by process_request once the head is parsed, before routing.
  static void on_request_head(httplib::Request& req) {
    // Ranges are ignored (the page needs none): httplib 0.11 builds a
    // multi-range answer in memory, 1000 ranges of weights.bin = 2.4 GB.
    req.ranges.clear();
    RequestHead head;
    head.method = req.method;
    for (const auto& [name, value] : req.headers) {
      if (name == "REMOTE_ADDR" || name == "REMOTE_PORT" || name == "LOCAL_ADDR" ||
          name == "LOCAL_PORT") {
        continue;  // httplib's own
      }
      ++head.header_count;
      if (strcasecmp(name.c_str(), "Content-Length") == 0) {
        head.content_lengths.push_back(value);
      } else if (strcasecmp(name.c_str(), "Transfer-Encoding") == 0) {
        head.transfer_encodings.push_back(value);
      }
    }
    if (const int status = request_refusal(head); status != 0 && t_connection) {
      t_connection->refuse(status);
    }
  }

  const int stop_fd_;
};

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
  explicit StopOnSignal(HardenedServer& server) {
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
        server.stop_all();
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

/// Answers with the file at `path`: read whole when small (httplib may
/// then compress it), else streamed from disk a chunk at a time, so that
/// many concurrent downloads hold little memory. False if it cannot be read.
bool serve_file(const std::string& path, const std::string& content_type,
                httplib::Response& res) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return false;
  }
  const auto file = std::shared_ptr<int>(new int(fd), [](const int* f) {
    close(*f);
    delete f;
  });
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    return false;
  }
  const auto size = static_cast<size_t>(st.st_size);
  if (size <= kInlineFileBytes) {
    std::string body(size, '\0');
    if (size > 0 && pread(fd, body.data(), size, 0) != static_cast<ssize_t>(size)) {
      return false;
    }
    res.set_content(std::move(body), content_type.c_str());
    return true;
  }
  res.set_content_provider(
      size, content_type,
      [file](size_t offset, size_t length, httplib::DataSink& sink) {
        const size_t want = std::min(length, kChunkBytes);
        const std::unique_ptr<char[]> chunk(new char[want]);
        const ssize_t n = pread(*file, chunk.get(), want, static_cast<off_t>(offset));
        return n > 0 && sink.write(chunk.get(), static_cast<size_t>(n));
      });
  return true;
}

/// Answers with `body`, which outlives the server, without copying it.
void serve_bytes(const std::string& body, httplib::Response& res) {
  res.set_content_provider(
      body.size(), "application/octet-stream",
      [&body](size_t offset, size_t length, httplib::DataSink& sink) {
        return sink.write(body.data() + offset, std::min(length, kChunkBytes));
      });
}

std::string to_string(const std::vector<uint8_t>& bytes) {
  return std::string(bytes.begin(), bytes.end());
}

const char* refusal_reason(int status) {
  switch (status) {
    case 413: return "Payload Too Large";
    case 431: return "Request Header Fields Too Large";
    default: return "Bad Request";
  }
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

  HardenedServer server;
  // A request refused by request_refusal is answered before routing, its
  // body unread (the connection then closes).
  server.set_pre_routing_handler([](const httplib::Request&, httplib::Response& res) {
    if (t_connection == nullptr || t_connection->refusal() == 0) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    res.status = t_connection->refusal();
    res.set_content(std::to_string(res.status) + " " + refusal_reason(res.status) + "\n",
                    "text/plain; charset=utf-8");
    return httplib::Server::HandlerResponse::Handled;
  });
  server.set_expect_100_continue_handler([](const httplib::Request&, httplib::Response& res) {
    if (t_connection != nullptr && t_connection->refusal() != 0) {
      res.status = t_connection->refusal();
      return res.status;
    }
    return 100;
  });
  // httplib answers a head it could not read with 400: say why.
  const httplib::Server::HandlerWithResponse explain = [](const httplib::Request&,
                                                         httplib::Response& res) {
    if (t_connection != nullptr && res.status == 400) {
      if (t_connection->trouble() == Trouble::kTooLarge) {
        res.status = 431;
      } else if (t_connection->trouble() == Trouble::kTooSlow) {
        res.status = 408;
      }
    }
    return httplib::Server::HandlerResponse::Unhandled;
  };
  server.set_error_handler(explain);
  const std::string cors = o.cors_origin;
  server.set_post_routing_handler([cors](const httplib::Request&, httplib::Response& res) {
    // After a request httplib could not parse, what follows on the
    // connection cannot be trusted to start a request: close it.
    const int s = res.status;
    if (t_connection != nullptr && (s == 400 || s == 408 || s == 413 || s == 414 || s == 431)) {
      t_connection->close_after();
    }
    if (t_connection != nullptr && t_connection->closing() && !res.has_header("Connection")) {
      res.headers.erase("Keep-Alive");
      res.set_header("Connection", "close");
    }
    res.headers.erase("Accept-Ranges");
    res.set_header("Accept-Ranges", "none");
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
      return serve_bytes(body, res);
    }
    const auto file = resolve_request_path(req.target, table);
    if (!file) {
      return not_found(res);
    }
    if (!serve_file(file->path, file->content_type, res)) {
      return not_found(res);
    }
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
  server.widen_backlog();
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
