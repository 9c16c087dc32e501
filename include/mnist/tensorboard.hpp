// --tensorboard-dir: the event files TensorBoard reads, with the tags, steps
// and writers of Keras 3's TensorBoard callback (docs/training.md,
// "TensorBoard"): TFRecord framing with masked CRC-32C around serialized
// tensorflow.Event protos (proto/tensorboard/).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mnist/train.hpp"

namespace mnist {

/// CRC-32C (Castagnoli: the reflected polynomial 0x82F63B78) of `size`
/// bytes, continuing `crc` (0 to start): crc32c("123456789") = 0xE3069283.
uint32_t crc32c(const void* data, size_t size, uint32_t crc = 0);

/// TFRecord's masked form of a CRC, which is what files store (a CRC over
/// bytes that hold CRCs would otherwise be weak): the CRC rotated right by
/// 15 bits, plus 0xa282ead8.
uint32_t mask_crc(uint32_t crc);

/// One TFRecord: the data's length (uint64, little-endian), the masked
/// CRC-32C of those 8 bytes (uint32 LE), the data, the masked CRC-32C of the
/// data (uint32 LE).
std::string tfrecord(std::string_view data);

/// The records of a TFRecord file, every CRC checked. A file that ends
/// inside a record (its writer killed mid-write) gives the records before it
/// and `torn` true. Throws FormatError naming the file and the record's byte
/// offset for a CRC that does not match, IoError for a file that cannot be
/// read.
struct TfRecords {
  std::vector<std::string> records;
  bool torn = false;
};
TfRecords read_tfrecords(const std::string& path);

/// A serialized tensorflow.Event holding one scalar, written as
/// Summary.Value{tag, simple_value}: a float32, as Keras's summaries are.
std::string scalar_event(double wall_time, int64_t step, const std::string& tag, float value);

/// One events file: "events.out.tfevents.<seconds, 10 digits>.<host>.<pid>.<n>"
/// (TensorFlow's EventsWriter's name, which TensorBoard finds by its
/// "tfevents" and reads in name order), its first record
/// {file_version: "brain.Event:2"}. Events are kept in memory until
/// flush(), which writes them with one write() and fsyncs the file: a run
/// killed at any moment leaves whole records up to its last flush (and at
/// worst a torn last record, which readers skip).
class EventWriter {
 public:
  /// Creates the file in `folder`, which must exist. Throws IoError.
  explicit EventWriter(const std::string& folder);
  /// Flushes (best effort: errors are not thrown from here).
  ~EventWriter();
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;

  /// Queues a scalar event, stamped with the current time.
  void scalar(const std::string& tag, int64_t step, double value);
  /// Writes the queued events and fsyncs the file. Throws IoError.
  void flush();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
  std::string pending_;
};

/// When the batch figures are written: Keras's update_freq "epoch" (only
/// the epoch_* tags) or "batch" (batch_* after every batch too).
enum class TensorBoardUpdate { kEpoch, kBatch };
/// "epoch", "batch"; nullopt for anything else.
std::optional<TensorBoardUpdate> parse_tensorboard_update(const std::string& text);

/// Where a resumed run goes on: the epochs, batches (the global batch
/// counter) and optimizer steps its checkpoint holds.
struct TensorBoardResume {
  int64_t epochs = 0;
  int64_t batches = 0;
  int64_t iterations = 0;
};

/// Rewrites (atomically) each events file in `folder` that holds events a
/// resumed run writes again: epoch_* tags at steps >= resume.epochs, batch_*
/// at steps > resume.batches, evaluation_* at steps > resume.iterations.
/// Every other record is kept byte for byte, and a torn last record is
/// dropped. Returns the number of events dropped. Throws FormatError (a
/// record that is not an Event, a bad CRC) or IoError.
int64_t trim_event_files(const std::string& folder, const TensorBoardResume& resume);

/// The files of "events.out.tfevents.*" in `folder` (none if it is missing),
/// sorted by name, as TensorBoard reads them.
std::vector<std::string> event_files(const std::string& folder);

/// Keras 3's TensorBoard callback's logs: DIR/train gets epoch_loss,
/// epoch_accuracy and epoch_learning_rate at step epoch - 1 (Keras's 0-based
/// epoch) and, with kBatch, batch_loss and batch_accuracy (the epoch's
/// running means, as Keras's batch logs) at the global batch counter (1 for
/// the first batch of the run; a resumed run goes on counting);
/// DIR/validation (with a validation set) gets epoch_loss and
/// epoch_accuracy (Keras drops "val_") at step epoch - 1, and
/// evaluation_loss_vs_iterations and evaluation_accuracy_vs_iterations at
/// the optimizer's step count (Keras's on_test_end). Both files are
/// flushed and fsynced at the end of every epoch.
class TensorBoardLog {
 public:
  /// Makes DIR/train (and DIR/validation with `with_validation`) and opens
  /// a new events file in each. A fresh run (no `resume`) first removes the
  /// events files earlier runs left in both folders (as --csv-log replaces
  /// its file), a resumed one trims them (trim_event_files) so that no step
  /// appears twice. `batches_per_epoch` turns (epoch, batch) into the global
  /// batch counter. Throws IoError, FormatError.
  TensorBoardLog(const std::string& dir,
                 TensorBoardUpdate update,
                 bool with_validation,
                 int64_t batches_per_epoch,
                 const std::optional<TensorBoardResume>& resume);
  ~TensorBoardLog();
  TensorBoardLog(const TensorBoardLog&) = delete;
  TensorBoardLog& operator=(const TensorBoardLog&) = delete;

  /// After a batch (with kBatch: every batch; else ignored).
  void on_batch(const BatchProgress& progress);
  /// After an epoch and its validation; `iterations`: the optimizer's steps
  /// so far. Flushes both files. Throws IoError.
  void on_epoch(const EpochStats& stats, int64_t iterations);

  /// What opening did to earlier runs' files: removed (fresh) or events
  /// dropped (resumed).
  int64_t removed_files() const { return removed_files_; }
  int64_t dropped_events() const { return dropped_events_; }
  const std::string& train_path() const { return train_->path(); }

 private:
  TensorBoardUpdate update_;
  int64_t batches_per_epoch_;
  std::unique_ptr<EventWriter> train_;
  std::unique_ptr<EventWriter> validation_;  ///< null without a validation set
  int64_t removed_files_ = 0;
  int64_t dropped_events_ = 0;
};

}  // namespace mnist
