// Keras CSVLogger's file (csv_log.hpp).
#include "mnist/csv_log.hpp"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>

#include <spdlog/fmt/fmt.h>

#include "mnist/error.hpp"
#include "mnist/fs_util.hpp"

namespace mnist {

namespace {

std::string value(double v) { return std::isnan(v) ? "nan" : fmt::format("{}", v); }

[[noreturn]] void fail(const std::string& path, const char* doing) {
  throw IoError(path + ": cannot " + doing + " the CSV log (" + std::strerror(errno) + ")");
}

}  // namespace

std::string CsvLog::header() { return "epoch,acc,loss,lr,val_acc,val_loss"; }

CsvLog::CsvLog(const std::string& path, bool append, int64_t first_epoch, bool with_validation)
    : path_(path), with_validation_(with_validation) {
  std::ifstream existing(path, std::ios::binary);
  if (append && existing) {
    std::string line;
    std::string kept;
    bool first = true;
    while (std::getline(existing, line)) {
      if (first) {
        if (line != header()) {
          throw ConfigError(path + ": has the columns '" + line + "', this run writes '" +
                            header() + "'; give another --csv-log");
        }
        first = false;
        kept += line + "\n";
        continue;
      }
      // Rows whose epoch (0-based) comes before the resumed one stay.
      char* end = nullptr;
      const long long epoch = std::strtoll(line.c_str(), &end, 10);
      if (end != line.c_str() && *end == ',' && epoch >= 0 && epoch + 1 < first_epoch) {
        kept += line + "\n";
      }
    }
    existing.close();
    if (first) {
      kept = header() + "\n";  // an empty file
    }
    write_file_atomic(path, kept);
    file_ = std::fopen(path.c_str(), "ab");
    if (file_ == nullptr) {
      fail(path, "open");
    }
    return;
  }
  existing.close();
  file_ = std::fopen(path.c_str(), "wb");
  if (file_ == nullptr) {
    fail(path, "create");
  }
  const std::string head = header() + "\n";
  if (std::fputs(head.c_str(), file_) < 0 || std::fflush(file_) != 0) {
    fail(path, "write");
  }
}

CsvLog::~CsvLog() {
  if (file_ != nullptr) {
    std::fclose(file_);
  }
}

void CsvLog::write(const EpochStats& s) {
  const std::string row = fmt::format(
      "{},{},{},{},{},{}\n", s.epoch - 1, value(s.accuracy), value(s.loss), value(s.learning_rate),
      with_validation_ ? value(s.val_accuracy) : "NA", with_validation_ ? value(s.val_loss) : "NA");
  if (std::fputs(row.c_str(), file_) < 0 || std::fflush(file_) != 0) {
    fail(path_, "write");
  }
}

}  // namespace mnist
