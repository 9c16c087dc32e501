// --csv-log: Keras CSVLogger's header and rows; a resumed run appends after
// the rows of the epochs it keeps.
#include "mnist/csv_log.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>

#include "mnist/error.hpp"
#include "test_util.hpp"

namespace mnist {
namespace {

std::string read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

EpochStats stats(int64_t epoch, double loss) {
  EpochStats s;
  s.epoch = epoch;
  s.loss = loss;
  s.accuracy = 0.5;
  s.val_loss = 0.25;
  s.val_accuracy = 0.75;
  s.learning_rate = 0.001;
  return s;
}

TEST(CsvLogTest, WritesKerasHeaderAndZeroBasedRows) {
  test::TempDir dir;
  const std::string path = dir.file("log.csv");
  {
    CsvLog log(path, false, 1, true);
    log.write(stats(1, 0.125));
    EXPECT_EQ(read(path), "epoch,acc,loss,lr,val_acc,val_loss\n0,0.5,0.125,0.001,0.75,0.25\n");
    log.write(stats(2, std::nan("")));
  }
  EXPECT_EQ(read(path),
            "epoch,acc,loss,lr,val_acc,val_loss\n0,0.5,0.125,0.001,0.75,0.25\n"
            "1,0.5,nan,0.001,0.75,0.25\n");
  {
    CsvLog log(path, false, 1, false);  // not appending: replaced
    log.write(stats(1, 0.5));
  }
  EXPECT_EQ(read(path), "epoch,acc,loss,lr,val_acc,val_loss\n0,0.5,0.5,0.001,NA,NA\n");
}

TEST(CsvLogTest, AppendKeepsEarlierEpochsAndDropsTheOnesTrainedAgain) {
  test::TempDir dir;
  const std::string path = dir.file("log.csv");
  {
    CsvLog log(path, false, 1, true);
    for (int64_t e = 1; e <= 3; ++e) {
      log.write(stats(e, 0.1 * static_cast<double>(e)));
    }
  }
  {
    CsvLog log(path, true, 3, true);  // resumes inside epoch 3
    log.write(stats(3, 0.9));
  }
  EXPECT_EQ(read(path),
            "epoch,acc,loss,lr,val_acc,val_loss\n0,0.5,0.1,0.001,0.75,0.25\n"
            "1,0.5,0.2,0.001,0.75,0.25\n2,0.5,0.9,0.001,0.75,0.25\n");
  {
    CsvLog log(dir.file("new.csv"), true, 5, true);  // append to nothing: a header
  }
  EXPECT_EQ(read(dir.file("new.csv")), "epoch,acc,loss,lr,val_acc,val_loss\n");
  test::write_bytes(dir.file("other.csv"), {'a', ',', 'b', '\n'});
  EXPECT_THROW(CsvLog(dir.file("other.csv"), true, 2, true), ConfigError);
  EXPECT_THROW(CsvLog(dir.file("no/such/dir/log.csv"), false, 1, true), IoError);
}

}  // namespace
}  // namespace mnist
