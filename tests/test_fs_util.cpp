// File safety: atomic replacement, the writable-folder probe and its
// messages, the sweep of what killed writers left (and only that), bounded
// JSON, and plain relative paths.
#include "mnist/fs_util.hpp"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "mnist/error.hpp"
#include "test_util.hpp"

namespace fs = std::filesystem;

namespace mnist {
namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// A pid that no process has (the highest possible, unused here).
std::string dead_pid() {
  for (int pid = 4194303; pid > 1000; --pid) {
    if (process_gone(std::to_string(pid)) && pid != ::getpid()) {
      return std::to_string(pid);
    }
  }
  return "";
}

TEST(FsUtilTest, AtomicWriteReplacesWholeFile) {
  test::TempDir dir;
  write_file_atomic(dir.file("a.txt"), std::string("old content that is long"));
  write_file_atomic(dir.file("a.txt"), std::string("new"));
  EXPECT_EQ(read_text(dir.file("a.txt")), "new");
  int entries = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1) << "no temporary file left";
  EXPECT_THROW(write_file_atomic(dir.file("missing/a.txt"), std::string("x")), IoError);
}

TEST(FsUtilTest, ReplaceWithLinkSharesTheNewFile) {
  test::TempDir dir;
  const std::vector<char> bytes{'n', 'e', 'w'};
  write_file_atomic(dir.file("staged.bin"), bytes);
  write_file_atomic(dir.file("weights.bin"), std::string("old"));
  replace_with_link(dir.file("staged.bin"), dir.file("weights.bin"), bytes);
  EXPECT_EQ(read_text(dir.file("weights.bin")), "new");
  EXPECT_EQ(read_text(dir.file("staged.bin")), "new");
}

TEST(FsUtilTest, UnusableSaveDirIsAnIoError) {
  test::TempDir dir;
  test::write_bytes(dir.file("plainfile"), {1, 2, 3});
  try {
    ensure_writable_dir(dir.file("plainfile/model"), "model folder");
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("plainfile/model: cannot create the model folder"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(ensure_writable_dir(dir.file("plainfile"), "model folder"), IoError);
  EXPECT_THROW(ensure_writable_dir("/proc/mnist-train-model", "model folder"), IoError);
}

TEST(FsUtilTest, ProblemsNameThePathAndTheFolderUseNeverAFlag) {
  test::TempDir dir;
  test::write_bytes(dir.file("plainfile"), {1});
  const auto on_file = writable_dir_problem(dir.file("plainfile"), "checkpoint folder");
  ASSERT_TRUE(on_file.has_value());
  EXPECT_EQ(on_file->rfind(dir.file("plainfile") + ": ", 0), 0U) << *on_file;
  const auto problem = writable_dir_problem("/proc/x/y", "checkpoint folder");
  ASSERT_TRUE(problem.has_value());
  EXPECT_EQ(problem->rfind("/proc/x/y: cannot create the checkpoint folder (", 0), 0U) << *problem;
  EXPECT_EQ(problem->find("--"), std::string::npos) << *problem;
  EXPECT_FALSE(writable_dir_problem(dir.file("new/nested"), "model folder").has_value());
  EXPECT_TRUE(fs::is_directory(dir.file("new/nested")));
}

TEST(FsUtilTest, SweepRemovesOnlyWhatGoneProcessesLeft) {
  const std::string gone = dead_pid();
  ASSERT_FALSE(gone.empty());
  const std::string me = std::to_string(::getppid());  // alive: the test runner's parent
  test::TempDir dir;
  for (const std::string& name :
       {".weights.bin.tmp." + gone, ".mnist-train-probe." + gone, ".model.json.tmp." + me,
        std::string("weights.bin"), std::string(".notes.tmp.x")}) {
    test::write_bytes(dir.file(name), {1});
  }
  fs::create_directories(dir.file(".old-folder.tmp." + gone + "/inner"));
  fs::create_symlink(dir.file("weights.bin"), dir.file(".link.tmp." + gone));
  remove_abandoned(dir.path().string(), temporary_name_pid);
  EXPECT_FALSE(fs::exists(dir.file(".weights.bin.tmp." + gone)));
  EXPECT_FALSE(fs::exists(dir.file(".mnist-train-probe." + gone)));
  EXPECT_FALSE(fs::exists(dir.file(".old-folder.tmp." + gone)));
  EXPECT_TRUE(fs::exists(dir.file(".model.json.tmp." + me))) << "its writer is alive";
  EXPECT_TRUE(fs::exists(dir.file("weights.bin")));
  EXPECT_TRUE(fs::exists(dir.file(".notes.tmp.x"))) << "not a process id";
  EXPECT_TRUE(fs::is_symlink(dir.file(".link.tmp." + gone))) << "symlinks are never followed";
  EXPECT_EQ(temporary_name_pid(".a.tmp.123"), "123");
  EXPECT_EQ(temporary_name_pid(".mnist-train-probe.77"), "77");
  EXPECT_EQ(temporary_name_pid("a.tmp.123"), "");
  EXPECT_FALSE(process_gone("12a"));
  EXPECT_FALSE(process_gone(""));
  EXPECT_TRUE(process_gone(std::to_string(::getpid())));
}

TEST(FsUtilTest, FolderLockAdmitsOneWriterAtATime) {
  test::TempDir dir;
  const std::string me = std::to_string(::getpid());
  std::optional<FolderLock> first(FolderLock::take(dir.path().string(), "checkpoint folder"));
  // flock locks belong to open files: a second open in this process conflicts too.
  try {
    FolderLock::take(dir.path().string(), "checkpoint folder");
    ADD_FAILURE() << "a second take succeeded";
  } catch (const IoError& e) {
    EXPECT_EQ(std::string(e.what()), dir.path().string() + ": in use by another mnist-train (pid " +
                                         me + ") as its checkpoint folder");
  }
  std::vector<std::string> waited_for;
  std::thread release([&first] {  // past the grace given to readers
    std::this_thread::sleep_for(std::chrono::milliseconds(FolderLock::kReaderGraceMs + 300));
    first.reset();
  });
  {
    const FolderLock second = FolderLock::wait(
        dir.path().string(), [&](const std::string& pid) { waited_for.push_back(pid); });
    EXPECT_EQ(waited_for, std::vector<std::string>{me});  // told once, with the holder
  }
  release.join();
  waited_for.clear();
  const FolderLock third = FolderLock::wait(
      dir.path().string(), [&](const std::string& pid) { waited_for.push_back(pid); });
  EXPECT_TRUE(waited_for.empty()) << "a free lock is taken without waiting";
  EXPECT_TRUE(fs::exists(dir.path() / FolderLock::kFileName));
}

TEST(FsUtilTest, FolderLockReadersShareItAndKeepWritersOut) {
  test::TempDir dir;
  const std::string d = dir.path().string();
  auto reader = FolderLock::share(d, 0);
  ASSERT_TRUE(reader.has_value());
  EXPECT_TRUE(FolderLock::share(d, 0).has_value()) << "readers share";
  EXPECT_THROW(FolderLock::take(d, "model folder"), IoError);
  // A writer waits silently for a reader that is done within the grace.
  std::vector<std::string> waited_for;
  std::thread release([&reader] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    reader.reset();
  });
  {
    const FolderLock writer =
        FolderLock::wait(d, [&](const std::string& pid) { waited_for.push_back(pid); });
    EXPECT_TRUE(waited_for.empty());
    EXPECT_FALSE(FolderLock::share(d, 50).has_value()) << "no reader while a writer holds it";
  }
  release.join();
  EXPECT_TRUE(FolderLock::share(d, 0).has_value());
  // A folder without the lock file where none can be made: no lock, no throw.
  EXPECT_FALSE(FolderLock::share(dir.file("missing/deeper"), 0).has_value());
}

TEST(FsUtilTest, JsonIsBoundedBeforeParsing) {
  test::TempDir dir;
  std::ofstream(dir.file("deep.json")) << std::string(100, '[') << std::string(100, ']');
  try {
    read_json_file(dir.file("deep.json"));
    FAIL() << "expected FormatError";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("nested deeper than 64 levels"), std::string::npos);
  }
  std::ofstream(dir.file("ok.json")) << R"({"a": "[[[[", "b": [1, 2]})";
  EXPECT_EQ(read_json_file(dir.file("ok.json"))["b"][1], 2);
  std::ofstream(dir.file("bad.json")) << "{";
  EXPECT_THROW(read_json_file(dir.file("bad.json")), FormatError);
  EXPECT_THROW(read_json_file(dir.file("missing.json")), IoError);
}

TEST(FsUtilTest, PlainRelativePaths) {
  EXPECT_TRUE(is_plain_relative_path("weights.bin"));
  EXPECT_TRUE(is_plain_relative_path("shards/group1-shard1of2.bin"));
  for (const char* p : {"", "/etc/passwd", "../x", "a/../b", "a//b", "./a", "a\\b", "a/", "."}) {
    EXPECT_FALSE(is_plain_relative_path(p)) << p;
  }
  EXPECT_FALSE(
      is_plain_relative_path(std::string("a\x01"
                                         "b")));
}

}  // namespace
}  // namespace mnist
