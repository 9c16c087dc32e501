// TensorBoard's event files (tensorboard.hpp).
#include "mnist/tensorboard.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <spdlog/fmt/fmt.h>

#include "mnist/error.hpp"
#include "mnist/fs_util.hpp"
#include "tensorboard/event.pb.h"

namespace mnist {

namespace {

namespace fs = std::filesystem;

constexpr char kFilePrefix[] = "events.out.tfevents.";
// The first record of every events file (TensorFlow's EventsWriter): the
// version TensorBoard's readers check before they trust SessionLog events.
constexpr char kFileVersion[] = "brain.Event:2";

// The reflected CRC-32C table, made once at compile time.
constexpr std::array<uint32_t, 256> crc32c_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) {
      c = (c & 1) != 0 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    }
    table[i] = c;
  }
  return table;
}
constexpr std::array<uint32_t, 256> kCrcTable = crc32c_table();

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) {
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  }
}

void put_u64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) {
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  }
}

uint64_t get_le(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) {
    v = (v << 8) | static_cast<unsigned char>(p[i]);
  }
  return v;
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string serialized(const tensorflow::Event& event) {
  std::string out;
  event.SerializeToString(&out);
  return out;
}

std::string file_version_event(double wall_time) {
  tensorflow::Event event;
  event.set_wall_time(wall_time);
  event.set_file_version(kFileVersion);
  return serialized(event);
}

std::string hostname() {
  std::array<char, 256> name{};
  if (gethostname(name.data(), name.size() - 1) != 0 || name[0] == '\0') {
    return "localhost";
  }
  std::string host(name.data());
  // A name that could not be a file name's part stays out of it.
  std::replace(host.begin(), host.end(), '/', '_');
  return host;
}

bool is_event_file(const std::string& name) { return name.rfind(kFilePrefix, 0) == 0; }

/// Which step a tag counts in, for trimming: Keras's epoch index, its
/// global batch counter, or the optimizer's steps; other tags are kept.
enum class StepSpace { kOther, kEpoch, kBatch, kIterations };

StepSpace step_space(const std::string& tag) {
  if (tag.rfind("epoch_", 0) == 0) {
    return StepSpace::kEpoch;
  }
  if (tag.rfind("batch_", 0) == 0) {
    return StepSpace::kBatch;
  }
  if (tag.rfind("evaluation_", 0) == 0) {
    return StepSpace::kIterations;
  }
  return StepSpace::kOther;
}

/// Whether a resumed run writes `event` again (then it goes).
bool written_again(const tensorflow::Event& event, const TensorBoardResume& resume) {
  if (!event.has_summary()) {
    return false;
  }
  for (const auto& value : event.summary().value()) {
    switch (step_space(value.tag())) {
      case StepSpace::kEpoch:
        if (event.step() >= resume.epochs) return true;
        break;
      case StepSpace::kBatch:
        if (event.step() > resume.batches) return true;
        break;
      case StepSpace::kIterations:
        if (event.step() > resume.iterations) return true;
        break;
      case StepSpace::kOther:
        break;
    }
  }
  return false;
}

void make_folder(const std::string& dir) {
  if (const auto problem = writable_dir_problem(dir, "TensorBoard folder")) {
    throw IoError(*problem);
  }
}

}  // namespace

uint32_t crc32c(const void* data, size_t size, uint32_t crc) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint32_t c = ~crc;
  for (size_t i = 0; i < size; ++i) {
    c = kCrcTable[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  }
  return ~c;
}

uint32_t mask_crc(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

std::string tfrecord(std::string_view data) {
  std::string out;
  out.reserve(data.size() + 16);
  put_u64(out, data.size());
  put_u32(out, mask_crc(crc32c(out.data(), 8)));
  out.append(data);
  put_u32(out, mask_crc(crc32c(data.data(), data.size())));
  return out;
}

TfRecords read_tfrecords(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw IoError(path + ": cannot open the events file (" + std::strerror(errno) + ")");
  }
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) {
    throw IoError(path + ": cannot read the events file");
  }
  TfRecords out;
  size_t at = 0;
  while (at < bytes.size()) {
    if (bytes.size() - at < 12) {
      out.torn = true;
      break;
    }
    const char* head = bytes.data() + at;
    if (static_cast<uint32_t>(get_le(head + 8, 4)) != mask_crc(crc32c(head, 8))) {
      throw FormatError(fmt::format(
          "{}: the record at byte {} has a length whose CRC-32C does not match: not a TFRecord "
          "events file, or a damaged one",
          path, at));
    }
    const uint64_t length = get_le(head, 8);
    if (length > bytes.size() - at - 12 || bytes.size() - at - 12 - length < 4) {
      out.torn = true;
      break;
    }
    const char* data = head + 12;
    if (static_cast<uint32_t>(get_le(data + length, 4)) != mask_crc(crc32c(data, length))) {
      throw FormatError(fmt::format(
          "{}: the record at byte {} ({} bytes) has data whose CRC-32C does not match: a damaged "
          "events file",
          path, at, length));
    }
    out.records.emplace_back(data, length);
    at += 12 + length + 4;
  }
  return out;
}

std::string scalar_event(double wall_time, int64_t step, const std::string& tag, float value) {
  tensorflow::Event event;
  event.set_wall_time(wall_time);
  event.set_step(step);
  auto* v = event.mutable_summary()->add_value();
  v->set_tag(tag);
  v->set_simple_value(value);
  return serialized(event);
}

EventWriter::EventWriter(const std::string& folder) {
  const double wall_time = now_seconds();
  const std::string base =
      fmt::format("{}/{}{:010d}.{}.{}", folder, kFilePrefix,
                  static_cast<long long>(std::floor(wall_time)), hostname(), getpid());
  // Two writers of one process in one folder in the same second (tests)
  // get the next number.
  for (int n = 0; fd_ < 0; ++n) {
    path_ = base + "." + std::to_string(n);
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd_ < 0 && (errno != EEXIST || n >= 1000)) {
      throw IoError(path_ + ": cannot create the events file (" + std::strerror(errno) + ")");
    }
  }
  pending_ = tfrecord(file_version_event(wall_time));
  flush();
  sync_dir(folder);
}

EventWriter::~EventWriter() {
  try {
    flush();
  } catch (const Error&) {
    // What could not be written is lost; the run's error says why.
  }
  ::close(fd_);
}

void EventWriter::scalar(const std::string& tag, int64_t step, double value) {
  pending_ += tfrecord(scalar_event(now_seconds(), step, tag, static_cast<float>(value)));
}

void EventWriter::flush() {
  size_t done = 0;
  while (done < pending_.size()) {
    const ssize_t n = ::write(fd_, pending_.data() + done, pending_.size() - done);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      const std::string why = std::strerror(n < 0 ? errno : EIO);
      pending_.clear();  // not written again by the destructor
      throw IoError(path_ + ": cannot write the events file (" + why + ")");
    }
    done += static_cast<size_t>(n);
  }
  pending_.clear();
  if (done > 0 && ::fsync(fd_) != 0) {
    throw IoError(path_ + ": cannot write the events file (" + std::strerror(errno) + ")");
  }
}

std::optional<TensorBoardUpdate> parse_tensorboard_update(const std::string& text) {
  if (text == "epoch") return TensorBoardUpdate::kEpoch;
  if (text == "batch") return TensorBoardUpdate::kBatch;
  return std::nullopt;
}

std::vector<std::string> event_files(const std::string& folder) {
  std::vector<std::string> files;
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) {
    return files;
  }
  for (const auto& entry : fs::directory_iterator(folder, ec)) {
    if (is_event_file(entry.path().filename().string()) && entry.is_regular_file(ec)) {
      files.push_back(entry.path().string());
    }
  }
  if (ec) {
    throw IoError(folder + ": cannot list the TensorBoard folder (" + ec.message() + ")");
  }
  std::sort(files.begin(), files.end());
  return files;
}

int64_t trim_event_files(const std::string& folder, const TensorBoardResume& resume) {
  int64_t dropped = 0;
  for (const auto& path : event_files(folder)) {
    const TfRecords file = read_tfrecords(path);
    std::string kept;
    int64_t dropped_here = 0;
    for (size_t i = 0; i < file.records.size(); ++i) {
      tensorflow::Event event;
      if (!event.ParseFromString(file.records[i])) {
        throw FormatError(fmt::format("{}: record {} is not a tensorflow.Event", path, i + 1));
      }
      if (written_again(event, resume)) {
        ++dropped_here;
      } else {
        kept += tfrecord(file.records[i]);
      }
    }
    if (dropped_here > 0 || file.torn) {
      write_file_atomic(path, kept);
    }
    dropped += dropped_here;
  }
  return dropped;
}

TensorBoardLog::TensorBoardLog(const std::string& dir,
                               TensorBoardUpdate update,
                               bool with_validation,
                               int64_t batches_per_epoch,
                               const std::optional<TensorBoardResume>& resume)
    : update_(update), batches_per_epoch_(batches_per_epoch) {
  const std::string train_dir = dir + "/train";
  const std::string validation_dir = dir + "/validation";
  for (const auto& folder : {train_dir, validation_dir}) {
    if (resume) {
      dropped_events_ += trim_event_files(folder, *resume);
      continue;
    }
    // A fresh run's curves alone: an earlier run's would share its steps.
    for (const auto& path : event_files(folder)) {
      std::error_code ec;
      fs::remove(path, ec);
      if (ec) {
        throw IoError(path + ": cannot remove an earlier run's events file (" + ec.message() + ")");
      }
      ++removed_files_;
    }
  }
  make_folder(train_dir);
  train_ = std::make_unique<EventWriter>(train_dir);
  if (with_validation) {
    make_folder(validation_dir);
    validation_ = std::make_unique<EventWriter>(validation_dir);
  }
}

TensorBoardLog::~TensorBoardLog() = default;

void TensorBoardLog::on_batch(const BatchProgress& p) {
  if (update_ != TensorBoardUpdate::kBatch) {
    return;
  }
  const int64_t step = (p.epoch - 1) * batches_per_epoch_ + p.batch;
  train_->scalar("batch_loss", step, p.loss);
  train_->scalar("batch_accuracy", step, p.accuracy);
}

void TensorBoardLog::on_epoch(const EpochStats& e, int64_t iterations) {
  const int64_t step = e.epoch - 1;
  // Keras's order: the logs' keys (loss, then the compiled metrics), then
  // the learning rate it adds.
  train_->scalar("epoch_loss", step, e.loss);
  train_->scalar("epoch_accuracy", step, e.accuracy);
  train_->scalar("epoch_learning_rate", step, e.learning_rate);
  if (validation_) {
    validation_->scalar("evaluation_loss_vs_iterations", iterations, e.val_loss);
    validation_->scalar("evaluation_accuracy_vs_iterations", iterations, e.val_accuracy);
    validation_->scalar("epoch_loss", step, e.val_loss);
    validation_->scalar("epoch_accuracy", step, e.val_accuracy);
    validation_->flush();
  }
  train_->flush();
}

}  // namespace mnist
