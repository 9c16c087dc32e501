// The hardened HTTP transport (see http.hpp): an on-demand thread pool, a
// bounded stream per connection, refusals before routing.
#include "serve/http.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "mnist/error.hpp"
#include "mnist/serve.hpp"

namespace mnist::http {

namespace {

using Clock = std::chrono::steady_clock;

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
/// httplib's TaskQueue with threads started on demand up to `max_threads`
/// and retired after `idle_life` without work, down to `min_threads`.
class ElasticPool final : public httplib::TaskQueue {
 public:
  ElasticPool(size_t min_threads,
              size_t max_threads,
              Clock::duration idle_life,
              HardenedServer::Warn warn)
      : min_(min_threads), max_(max_threads), idle_life_(idle_life), warn_(std::move(warn)) {
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
          if (warn_) {
            warn_("serve: cannot start a thread (" + std::string(e.what()) + "); " +
                  std::to_string(threads_.size()) + " running");
          }
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
      const bool woken =
          cond_.wait_for(lock, idle_life_, [this] { return shutdown_ || !jobs_.empty(); });
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
  const HardenedServer::Warn warn_;
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
  bool closing() const { return trouble_ != Trouble::kNone || refusal_ != 0 || close_after_; }

  /// When httplib gave up on a request line (too long, too slow) without
  /// answering: answers 414 or 408 itself.
  void answer_unanswered() {
    if (written_ > 0 || request_bytes_ == 0 ||
        (trouble_ != Trouble::kTooLarge && trouble_ != Trouble::kTooSlow)) {
      return;
    }
    const char* answer = trouble_ == Trouble::kTooLarge ? "HTTP/1.1 414 URI Too Long\r\n"
                                                        : "HTTP/1.1 408 Request Timeout\r\n";
    const std::string text = std::string(answer) + "Connection: close\r\nContent-Length: 0\r\n\r\n";
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
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
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

const char* refusal_reason(int status) {
  switch (status) {
    case 413:
      return "Payload Too Large";
    case 431:
      return "Request Header Fields Too Large";
    default:
      return "Bad Request";
  }
}

}  // namespace

HardenedServer::HardenedServer(Warn warn) : stop_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (stop_fd_ < 0) {
    throw IoError(std::string("serve: cannot create an eventfd (") + std::strerror(errno) + ")");
  }
  new_task_queue = [warn = std::move(warn)] {
    return new ElasticPool(kMinThreads, kMaxThreads, kIdleThreadLife, warn);
  };
  set_keep_alive_max_count(kKeepAliveMaxRequests);
  set_keep_alive_timeout(kKeepAliveSeconds);
  set_payload_max_length(kMaxRequestBodyBytes);
  install_handlers();
}

HardenedServer::~HardenedServer() { ::close(stop_fd_); }

void HardenedServer::set_response_headers(std::function<void(httplib::Response&)> add) {
  add_headers_ = std::move(add);
}

void HardenedServer::stop_all() {
  const uint64_t one = 1;
  [[maybe_unused]] const auto n = ::write(stop_fd_, &one, sizeof(one));
  stop();
}

void HardenedServer::widen_backlog() { ::listen(svr_sock_, SOMAXCONN); }

void HardenedServer::install_handlers() {
  // A request refused by request_refusal is answered before routing, its
  // body unread (the connection then closes).
  set_pre_routing_handler([](const httplib::Request&, httplib::Response& res) {
    if (t_connection == nullptr || t_connection->refusal() == 0) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    res.status = t_connection->refusal();
    res.set_content(std::to_string(res.status) + " " + refusal_reason(res.status) + "\n",
                    "text/plain; charset=utf-8");
    return httplib::Server::HandlerResponse::Handled;
  });
  set_expect_100_continue_handler([](const httplib::Request&, httplib::Response& res) {
    if (t_connection != nullptr && t_connection->refusal() != 0) {
      res.status = t_connection->refusal();
      return res.status;
    }
    return 100;
  });
  // httplib answers a head it could not read with 400: say why.
  const HandlerWithResponse explain = [](const httplib::Request&, httplib::Response& res) {
    if (t_connection != nullptr && res.status == 400) {
      if (t_connection->trouble() == Trouble::kTooLarge) {
        res.status = 431;
      } else if (t_connection->trouble() == Trouble::kTooSlow) {
        res.status = 408;
      }
    }
    return HandlerResponse::Unhandled;
  };
  set_error_handler(explain);
  set_post_routing_handler([this](const httplib::Request&, httplib::Response& res) {
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
    if (add_headers_) {
      add_headers_(res);
    }
  });
}

bool HardenedServer::process_and_close_socket(socket_t sock) {
  // httplib writes a response's head and body separately: without
  // TCP_NODELAY, Nagle's algorithm and delayed ACKs stall keep-alive
  // responses by ~40 ms.
  const int one = 1;
  setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  Connection connection(sock, stop_fd_);
  t_connection = &connection;
  bool ret = false;
  for (size_t left = keep_alive_max_count_; left > 0 && svr_sock_ != INVALID_SOCKET; --left) {
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

void HardenedServer::on_request_head(httplib::Request& req) {
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

}  // namespace mnist::http
