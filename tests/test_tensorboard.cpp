// --tensorboard-dir: CRC-32C and TFRecord framing against known bytes, the
// Event protos through the generated classes, and the logs' files, tags,
// steps, replacement and resumption.
#include "mnist/tensorboard.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "mnist/error.hpp"
#include "tensorboard/event.pb.h"
#include "test_util.hpp"

namespace mnist {
namespace {

std::string bytes_of(const std::vector<int>& values) {
  std::string out;
  for (int v : values) {
    out.push_back(static_cast<char>(v));
  }
  return out;
}

std::string hex(const std::string& bytes) {
  std::string out;
  for (unsigned char c : bytes) {
    out += "0123456789abcdef"[c >> 4];
    out += "0123456789abcdef"[c & 15];
  }
  return out;
}

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

/// (tag, step, value) of every scalar in a folder's events files, in order,
/// and the file_version records seen.
struct Scalars {
  std::vector<std::tuple<std::string, int64_t, float>> values;
  std::vector<std::string> versions;
};

Scalars scalars_in(const std::string& folder) {
  Scalars out;
  for (const auto& path : event_files(folder)) {
    for (const auto& record : read_tfrecords(path).records) {
      tensorflow::Event event;
      EXPECT_TRUE(event.ParseFromString(record)) << path;
      if (event.has_file_version()) {
        out.versions.push_back(event.file_version());
      }
      for (const auto& v : event.summary().value()) {
        out.values.emplace_back(v.tag(), event.step(), v.simple_value());
      }
    }
  }
  return out;
}

/// The steps of `tag`.
std::vector<int64_t> steps_of(const Scalars& s, const std::string& tag) {
  std::vector<int64_t> steps;
  for (const auto& [t, step, value] : s.values) {
    if (t == tag) {
      steps.push_back(step);
    }
  }
  return steps;
}

/// The value of `tag` at `step` (NaN if none).
float value_at(const Scalars& s, const std::string& tag, int64_t step) {
  for (const auto& [t, at, value] : s.values) {
    if (t == tag && at == step) {
      return value;
    }
  }
  return std::nanf("");
}

BatchProgress batch(int64_t epoch, int64_t b, int64_t batches) {
  BatchProgress p;
  p.epoch = epoch;
  p.batch = b;
  p.batches = batches;
  p.loss = 1.0 / static_cast<double>(b);
  p.accuracy = 0.1 * static_cast<double>(b);
  return p;
}

EpochStats epoch_stats(int64_t epoch) {
  EpochStats e;
  e.epoch = epoch;
  e.loss = 0.5 / static_cast<double>(epoch);
  e.accuracy = 0.9;
  e.val_loss = 0.25 / static_cast<double>(epoch);
  e.val_accuracy = 0.8;
  e.learning_rate = 0.001;
  return e;
}

/// `epochs` epochs of `batches` batches fed to `log` from epoch `first`.
void feed(TensorBoardLog& log, int64_t first, int64_t epochs, int64_t batches) {
  for (int64_t e = first; e < first + epochs; ++e) {
    for (int64_t b = 1; b <= batches; ++b) {
      log.on_batch(batch(e, b, batches));
    }
    log.on_epoch(epoch_stats(e), e * batches);
  }
}

TEST(TensorBoardTest, Crc32cMatchesKnownVectors) {
  // The check value of CRC-32C, and RFC 3720's (iSCSI) vectors, B.4.
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);
  EXPECT_EQ(crc32c("", 0), 0u);
  const std::string zeros(32, '\0');
  const std::string ones(32, '\xff');
  std::string up;
  std::string down;
  for (int i = 0; i < 32; ++i) {
    up.push_back(static_cast<char>(i));
    down.push_back(static_cast<char>(31 - i));
  }
  EXPECT_EQ(crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);
  EXPECT_EQ(crc32c(ones.data(), ones.size()), 0x62A8AB43u);
  EXPECT_EQ(crc32c(up.data(), up.size()), 0x46DD794Eu);
  EXPECT_EQ(crc32c(down.data(), down.size()), 0x113FDB5Cu);
  // Continuing a CRC over a second part gives the whole's.
  EXPECT_EQ(crc32c("6789", 4, crc32c("12345", 5)), 0xE3069283u);
}

TEST(TensorBoardTest, MasksAsTfRecordDoes) {
  EXPECT_EQ(mask_crc(0), 0xa282ead8u);
  // 0xE3069283 rotated right by 15: 0x2507C60D; plus 0xa282ead8.
  EXPECT_EQ(mask_crc(0xE3069283u), 0xC78AB0E5u);
}

TEST(TensorBoardTest, FramesARecord) {
  // Length 3 (u64 LE), its masked CRC, "abc", the data's masked CRC
  // (computed apart from this code, by a bitwise CRC-32C).
  EXPECT_EQ(hex(tfrecord("abc")), "0300000000000000b099490e6162636e57f121");
  EXPECT_EQ(hex(tfrecord("")), "000000000000000029039807d8ea82a2");
  const std::string framed = tfrecord("abc");
  EXPECT_EQ(framed.substr(0, 12), bytes_of({3, 0, 0, 0, 0, 0, 0, 0, 0xb0, 0x99, 0x49, 0x0e}));
}

TEST(TensorBoardTest, ScalarEventRoundTripsThroughTheGeneratedClasses) {
  const std::string bytes = scalar_event(1700000000.25, 42, "epoch_loss", 0.125f);
  tensorflow::Event event;
  ASSERT_TRUE(event.ParseFromString(bytes));
  EXPECT_DOUBLE_EQ(event.wall_time(), 1700000000.25);
  EXPECT_EQ(event.step(), 42);
  ASSERT_TRUE(event.has_summary());
  ASSERT_EQ(event.summary().value_size(), 1);
  EXPECT_EQ(event.summary().value(0).tag(), "epoch_loss");
  EXPECT_EQ(event.summary().value(0).value_case(), tensorflow::Summary::Value::kSimpleValue);
  EXPECT_EQ(event.summary().value(0).simple_value(), 0.125f);
  // The wire bytes TensorFlow's field numbers give: wall_time (1, fixed64),
  // step (2, varint 42), summary (5) { value (1) { tag (1), simple_value (2,
  // fixed32 0.125f = 0x3e000000) } }.
  EXPECT_EQ(bytes.substr(0, 1), "\x09");
  EXPECT_EQ(bytes.substr(9, 2), bytes_of({0x10, 42}));
  EXPECT_EQ(bytes.substr(11), bytes_of({0x2a, 0x13, 0x0a, 0x11, 0x0a, 0x0a, 'e', 'p', 'o', 'c', 'h',
                                        '_',  'l',  'o',  's',  's',  0x15, 0,   0,   0,   0x3e}));
}

TEST(TensorBoardTest, WriterStartsWithTheFileVersionAndFlushesWholeRecords) {
  test::TempDir dir;
  std::string path;
  {
    EventWriter writer(dir.path());
    path = writer.path();
    const std::string name = std::filesystem::path(path).filename().string();
    EXPECT_EQ(name.rfind("events.out.tfevents.", 0), 0u) << name;
    EXPECT_EQ(name.find('.', 20) - 20, 10u) << name;  // 10 digits of seconds
    // The file_version record is on disk from the start.
    const TfRecords first = read_tfrecords(path);
    ASSERT_EQ(first.records.size(), 1u);
    tensorflow::Event version;
    ASSERT_TRUE(version.ParseFromString(first.records[0]));
    EXPECT_EQ(version.file_version(), "brain.Event:2");
    EXPECT_GT(version.wall_time(), 1.6e9);
    writer.scalar("epoch_loss", 0, 0.5);
    EXPECT_EQ(read_tfrecords(path).records.size(), 1u);  // queued until flush
    writer.flush();
    EXPECT_EQ(read_tfrecords(path).records.size(), 2u);
    writer.scalar("epoch_loss", 1, 0.25);
  }
  // The destructor flushed the rest.
  EXPECT_EQ(read_tfrecords(path).records.size(), 3u);
  // A second writer in the same folder gets its own file.
  EventWriter other(dir.path());
  EXPECT_NE(other.path(), path);
  EXPECT_EQ(event_files(dir.path()).size(), 2u);
}

TEST(TensorBoardTest, ReaderStopsAtATornRecordAndRefusesABadCrc) {
  test::TempDir dir;
  const std::string path = dir.file("events.out.tfevents.1.h");
  const std::string whole = tfrecord("first") + tfrecord("second");
  write(path, whole + tfrecord("third").substr(0, 15));
  TfRecords r = read_tfrecords(path);
  EXPECT_TRUE(r.torn);
  EXPECT_EQ(r.records, (std::vector<std::string>{"first", "second"}));
  write(path, whole + tfrecord("third").substr(0, 5));
  r = read_tfrecords(path);
  EXPECT_TRUE(r.torn);
  EXPECT_EQ(r.records.size(), 2u);
  write(path, whole);
  r = read_tfrecords(path);
  EXPECT_FALSE(r.torn);
  EXPECT_EQ(r.records.size(), 2u);

  std::string bad = whole;
  bad[tfrecord("first").size() + 12] ^= 1;  // a byte of "second"
  write(path, bad);
  try {
    read_tfrecords(path);
    FAIL() << "a bad CRC was taken";
  } catch (const FormatError& e) {
    EXPECT_STREQ(e.what(),
                 (path + ": the record at byte 21 (6 bytes) has data whose CRC-32C does not match: "
                         "a damaged events file")
                     .c_str());
  }
  write(path, "not an events file at all");
  EXPECT_THROW(read_tfrecords(path), FormatError);
  EXPECT_THROW(read_tfrecords(dir.file("missing")), IoError);
}

TEST(TensorBoardTest, ParsesTheUpdateFrequency) {
  EXPECT_EQ(parse_tensorboard_update("epoch"), TensorBoardUpdate::kEpoch);
  EXPECT_EQ(parse_tensorboard_update("batch"), TensorBoardUpdate::kBatch);
  EXPECT_FALSE(parse_tensorboard_update("Batch").has_value());
  EXPECT_FALSE(parse_tensorboard_update("1").has_value());
}

TEST(TensorBoardTest, LogWritesKerasTagsAndSteps) {
  test::TempDir dir;
  {
    TensorBoardLog log(dir.path(), TensorBoardUpdate::kBatch, true, 3, std::nullopt);
    feed(log, 1, 2, 3);
  }
  const Scalars train = scalars_in(dir.file("train"));
  EXPECT_EQ(train.versions, std::vector<std::string>{"brain.Event:2"});
  EXPECT_EQ(steps_of(train, "batch_loss"), (std::vector<int64_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(steps_of(train, "batch_accuracy"), (std::vector<int64_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(steps_of(train, "epoch_loss"), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(steps_of(train, "epoch_accuracy"), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(steps_of(train, "epoch_learning_rate"), (std::vector<int64_t>{0, 1}));
  // Values as float32: the second epoch's loss 0.25, its first batch's 1.
  EXPECT_EQ(value_at(train, "epoch_loss", 1), 0.25f);
  EXPECT_EQ(value_at(train, "batch_loss", 4), 1.0f);
  EXPECT_EQ(value_at(train, "batch_accuracy", 2), 0.2f);
  EXPECT_EQ(value_at(train, "epoch_learning_rate", 0), 0.001f);
  const Scalars validation = scalars_in(dir.file("validation"));
  EXPECT_EQ(steps_of(validation, "epoch_loss"), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(steps_of(validation, "epoch_accuracy"), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(steps_of(validation, "evaluation_loss_vs_iterations"), (std::vector<int64_t>{3, 6}));
  EXPECT_TRUE(steps_of(validation, "batch_loss").empty());
  EXPECT_TRUE(steps_of(validation, "epoch_learning_rate").empty());
  EXPECT_EQ(value_at(validation, "epoch_loss", 0), 0.25f);
  EXPECT_EQ(value_at(validation, "evaluation_accuracy_vs_iterations", 6), 0.8f);
}

TEST(TensorBoardTest, EpochFrequencyWritesNoBatchesAndNoValidationWithoutOne) {
  test::TempDir dir;
  {
    TensorBoardLog log(dir.path(), TensorBoardUpdate::kEpoch, false, 3, std::nullopt);
    feed(log, 1, 2, 3);
  }
  const Scalars train = scalars_in(dir.file("train"));
  EXPECT_TRUE(steps_of(train, "batch_loss").empty());
  EXPECT_EQ(steps_of(train, "epoch_loss"), (std::vector<int64_t>{0, 1}));
  EXPECT_FALSE(std::filesystem::exists(dir.file("validation")));
}

TEST(TensorBoardTest, FreshRunReplacesEarlierFilesAndResumedOneTrimsThem) {
  test::TempDir dir;
  {
    TensorBoardLog log(dir.path(), TensorBoardUpdate::kBatch, true, 4, std::nullopt);
    feed(log, 1, 3, 4);
  }
  write(dir.file("train/notes.txt"), "kept");
  {
    TensorBoardLog log(dir.path(), TensorBoardUpdate::kBatch, true, 4, std::nullopt);
    EXPECT_EQ(log.removed_files(), 2);
    feed(log, 1, 3, 4);
  }
  EXPECT_EQ(read(dir.file("train/notes.txt")), "kept");
  EXPECT_EQ(steps_of(scalars_in(dir.file("train")), "epoch_loss"), (std::vector<int64_t>{0, 1, 2}));
  // A run killed in epoch 3 after its checkpoint of epoch 2 and batch 1 of
  // epoch 3 (steps 0-1, batches 1-9, 9 optimizer steps) had written all of
  // epoch 3, and a torn record.
  const std::string train_file = event_files(dir.file("train")).at(0);
  write(train_file, read(train_file) + tfrecord("torn").substr(0, 7));
  {
    TensorBoardLog log(dir.path(), TensorBoardUpdate::kBatch, true, 4, TensorBoardResume{2, 9, 9});
    // Dropped: epoch 3's three train and two validation epoch_* values,
    // batches 10-12 (two tags each), evaluation_* at 12 (two).
    EXPECT_EQ(log.dropped_events(), 3 + 2 + 6 + 2);
    EXPECT_EQ(log.removed_files(), 0);
    for (int64_t b = 2; b <= 4; ++b) {
      log.on_batch(batch(3, b, 4));
    }
    log.on_epoch(epoch_stats(3), 12);
  }
  const Scalars train = scalars_in(dir.file("train"));
  EXPECT_EQ(train.versions.size(), 2u);  // the killed run's file and the resumed one's
  EXPECT_EQ(steps_of(train, "epoch_loss"), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(steps_of(train, "batch_loss"),
            (std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}));
  const Scalars validation = scalars_in(dir.file("validation"));
  EXPECT_EQ(steps_of(validation, "epoch_accuracy"), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(steps_of(validation, "evaluation_accuracy_vs_iterations"),
            (std::vector<int64_t>{4, 8, 12}));
  EXPECT_FALSE(read_tfrecords(train_file).torn);
}

TEST(TensorBoardTest, TrimRefusesAFileOfOtherRecords) {
  test::TempDir dir;
  // Framed, but the record is not an Event (a field with wire type 7).
  write(dir.file("events.out.tfevents.1.h"), tfrecord("\x0f"));
  try {
    trim_event_files(dir.path(), TensorBoardResume{});
    FAIL() << "a record that is no Event was taken";
  } catch (const FormatError& e) {
    EXPECT_STREQ(
        e.what(),
        (dir.file("events.out.tfevents.1.h") + ": record 1 is not a tensorflow.Event").c_str());
  }
}

TEST(TensorBoardTest, UnwritableFolderIsAnIoErrorNamingIt) {
  try {
    TensorBoardLog log("/proc/mnist-tb", TensorBoardUpdate::kEpoch, true, 1, std::nullopt);
    FAIL() << "a log in /proc was opened";
  } catch (const IoError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("/proc/mnist-tb/train: cannot create the TensorBoard "
                                          "folder",
                                          0),
              0u)
        << e.what();
  }
}

}  // namespace
}  // namespace mnist
