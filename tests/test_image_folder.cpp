// Folder datasets: Keras's index order and split, numpy's shuffle, the
// decoded images' cache and the files that cannot be records.
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "mnist/error.hpp"
#include "mnist/image_folder.hpp"
#include "png_util.hpp"
#include "test_util.hpp"

namespace fs = std::filesystem;

namespace mnist {
namespace {

using test::TempDir;

void write_bytes(const fs::path& path, const std::vector<uint8_t>& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

/// A 4x3 gray PNG whose pixels are `value`, value+1, ...
void write_png(const fs::path& path, uint8_t value, uint32_t width = 4, uint32_t height = 3) {
  std::vector<uint8_t> gray(static_cast<size_t>(width) * height);
  for (size_t i = 0; i < gray.size(); ++i) {
    gray[i] = static_cast<uint8_t>(value + i);
  }
  write_bytes(path, test::gray_png(width, height, gray.data()));
}

std::vector<std::string> paths(const std::vector<ImageFile>& files) {
  std::vector<std::string> out;
  for (const auto& f : files) {
    out.push_back(f.path);
  }
  return out;
}

// numpy 1.24: x = list(range(n)); np.random.RandomState(seed).shuffle(x)
TEST(NumpyShuffle, MatchesNumpysLegacyRandomState) {
  EXPECT_EQ(numpy_shuffle_order(10, 42), (std::vector<int64_t>{8, 1, 5, 0, 7, 2, 9, 4, 3, 6}));
  EXPECT_EQ(numpy_shuffle_order(7, 0), (std::vector<int64_t>{6, 2, 1, 3, 0, 5, 4}));
  const auto big = numpy_shuffle_order(1000, 123456);
  EXPECT_EQ(std::vector<int64_t>(big.begin(), big.begin() + 12),
            (std::vector<int64_t>{602, 357, 946, 829, 650, 232, 394, 680, 629, 29, 223, 524}));
  EXPECT_EQ(std::vector<int64_t>(big.end() - 3, big.end()), (std::vector<int64_t>{498, 746, 65}));
  const auto top = numpy_shuffle_order(37, 4294967295U);
  EXPECT_EQ(std::vector<int64_t>(top.begin(), top.begin() + 12),
            (std::vector<int64_t>{15, 2, 23, 20, 17, 31, 21, 24, 3, 30, 16, 1}));
  EXPECT_TRUE(numpy_shuffle_order(0, 1).empty());
  EXPECT_EQ(numpy_shuffle_order(1, 1), (std::vector<int64_t>{0}));
}

TEST(ImageFolder, IndexesInKerasOrderAndSkipsHiddenAndOtherFiles) {
  const TempDir dir;
  const fs::path d = dir.path();
  write_png(d / "dog" / "b.png", 1);
  write_png(d / "dog" / "a.PNG", 2);
  write_png(d / "dog" / "sub" / "c.jpg", 3);  // a PNG named .jpg: the decoder reads magic bytes
  write_png(d / "dog" / "sub-x" / "d.png", 4);
  write_png(d / "cat" / "z.jpeg", 5);
  write_png(d / "cat" / ".hidden.png", 6);
  write_png(d / "cat" / ".thumbs" / "e.png", 7);
  write_bytes(d / "cat" / ".DS_Store", {1, 2, 3});
  write_bytes(d / "cat" / "notes.txt", {1, 2, 3});
  write_png(d / ".git" / "x.png", 8);  // a hidden folder is no class
  write_bytes(d / "README.md", {1});

  ASSERT_TRUE(is_image_folder(d.string()));
  const FolderIndex index = index_image_folder(d.string());
  EXPECT_EQ(index.class_names, (std::vector<std::string>{"cat", "dog"}));
  EXPECT_FALSE(index.subsets);
  // Keras sorts the walk by folder path, then the files of each folder by
  // name; hidden files and folders are skipped.
  EXPECT_EQ(paths(index.train), (std::vector<std::string>{"cat/z.jpeg", "dog/a.PNG", "dog/b.png",
                                                          "dog/sub/c.jpg", "dog/sub-x/d.png"}));
  EXPECT_EQ(index.train[0].label, 0);
  EXPECT_EQ(index.train[4].label, 1);
  EXPECT_EQ(index.hidden, 2);       // .hidden.png, .DS_Store
  EXPECT_EQ(index.other_files, 1);  // notes.txt
}

TEST(ImageFolder, WalkSortsFoldersByTheirWholePath) {
  const TempDir dir;
  const fs::path d = dir.path();
  write_png(d / "a" / "sub" / "1.png", 1);
  write_png(d / "a" / "sub" / "deep" / "1.png", 1);
  write_png(d / "a" / "sub-x" / "1.png", 1);
  write_png(d / "a" / "0.png", 1);
  write_png(d / "b" / "0.png", 1);
  const FolderIndex index = index_image_folder(d.string());
  // Python: sorted(["a", "a/sub", "a/sub/deep", "a/sub-x"]) puts "a/sub-x"
  // before "a/sub/deep" ('-' < '/'), as os.walk's roots sorted do.
  EXPECT_EQ(paths(index.train), (std::vector<std::string>{"a/0.png", "a/sub/1.png", "a/sub-x/1.png",
                                                          "a/sub/deep/1.png", "b/0.png"}));
}

TEST(ImageFolder, SubsetFolders) {
  const TempDir dir;
  const fs::path d = dir.path();
  for (const char* c : {"x", "y"}) {
    write_png(d / "train" / c / "1.png", 1);
    write_png(d / "train" / c / "2.png", 1);
    write_png(d / "val" / c / "1.png", 1);
  }
  write_png(d / "test" / "y" / "1.png", 1);
  const FolderIndex index = index_image_folder(d.string());
  EXPECT_TRUE(index.subsets);
  EXPECT_EQ(index.validation_folder, "val");
  EXPECT_EQ(index.class_names, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(index.train.size(), 4U);
  EXPECT_EQ(paths(index.validation), (std::vector<std::string>{"val/x/1.png", "val/y/1.png"}));
  ASSERT_EQ(index.test.size(), 1U);
  EXPECT_EQ(index.test[0].label, 1);  // by name: y is train/'s second class
  const FolderSplit split = split_image_folder(index, 0.5, 0.5, 7);
  EXPECT_EQ(split.train.size(), 4U);  // the folders are the subsets
  EXPECT_EQ(split.validation.size(), 2U);
  EXPECT_EQ(split.test.size(), 1U);

  write_png(d / "test" / "z" / "1.png", 1);
  EXPECT_THROW(
      {
        try {
          index_image_folder(d.string());
        } catch (const DataError& e) {
          EXPECT_NE(std::string(e.what()).find("a class that train/ does not have"),
                    std::string::npos)
              << e.what();
          throw;
        }
      },
      DataError);
  fs::remove_all(d / "test" / "z");
  write_png(d / "validation" / "x" / "1.png", 1);
  EXPECT_THROW(index_image_folder(d.string()), DataError);  // validation/ and val/
}

TEST(ImageFolder, SplitsAsKerasWithTheTestPartBeforeValidation) {
  const TempDir dir;
  const fs::path d = dir.path();
  for (int i = 0; i < 10; ++i) {
    write_png(d / (i < 5 ? "a" : "b") / (std::to_string(i) + ".png"), 1);
  }
  const FolderIndex index = index_image_folder(d.string());
  const auto order = numpy_shuffle_order(10, 42);
  // Keras: training = shuffled[:-int(0.2 * 10)], validation = shuffled[-2:]
  const FolderSplit keras = split_image_folder(index, 0.2, 0, 42);
  ASSERT_EQ(keras.train.size(), 8U);
  ASSERT_EQ(keras.validation.size(), 2U);
  EXPECT_TRUE(keras.test.empty());
  for (size_t i = 0; i < 8; ++i) {
    EXPECT_EQ(keras.train[i].path, index.train[static_cast<size_t>(order[i])].path);
  }
  EXPECT_EQ(keras.validation[1].path, index.train[static_cast<size_t>(order[9])].path);
  const FolderSplit three = split_image_folder(index, 0.2, 0.3, 42);
  EXPECT_EQ(three.train.size(), 5U);
  EXPECT_EQ(three.test.size(), 3U);
  EXPECT_EQ(three.test[0].path, index.train[static_cast<size_t>(order[5])].path);
  EXPECT_EQ(paths(three.validation), paths(keras.validation));
  // A seed above numpy's range is taken modulo 2^32.
  EXPECT_EQ(paths(split_image_folder(index, 0.2, 0, (uint64_t{1} << 32) + 42).train),
            paths(keras.train));
}

TEST(ImageFolder, FoldersThatAreNoDatasetSayWhy) {
  const TempDir dir;
  const fs::path d = dir.path();
  const auto message = [&](const fs::path& p) {
    try {
      index_image_folder(p.string());
    } catch (const DataError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  fs::create_directories(d / "empty");
  EXPECT_NE(message(d / "empty").find("no class subfolders"), std::string::npos);
  write_png(d / "one" / "a" / "1.png", 1);
  EXPECT_NE(message(d / "one").find("one class folder (a) only"), std::string::npos);
  write_png(d / "hollow" / "a" / "1.png", 1);
  fs::create_directories(d / "hollow" / "b");
  write_bytes(d / "hollow" / "b" / "x.txt", {1});
  EXPECT_NE(message(d / "hollow").find("hollow/b: the class folder holds no image files"),
            std::string::npos)
      << message(d / "hollow");
  write_png(d / "bad" / "a" / "1.png", 1);
  write_png(d / "bad" / "b\xff" / "1.png", 1);
  EXPECT_NE(message(d / "bad").find("not valid UTF-8"), std::string::npos);
  EXPECT_NE(message(d / "missing").find("not found"), std::string::npos);
}

TEST(ImageFolder, FilesThatCannotBeRecordsAreMarkedNotFollowed) {
  const TempDir dir;
  const fs::path d = dir.path();
  write_png(d / "a" / "1.png", 1);
  write_png(d / "b" / "1.png", 1);
  ASSERT_EQ(::mkfifo((d / "a" / "fifo.png").c_str(), 0600), 0);  // reading it would block
  fs::create_symlink("loop2.png", d / "a" / "loop1.png");
  fs::create_symlink("loop1.png", d / "a" / "loop2.png");
  fs::create_directory_symlink(d, d / "b" / "up");  // a link loop through a folder
  write_png(d / "b" / "n\xe9.png", 1);              // Latin-1, not UTF-8
  write_bytes(d / "b" / "old.gif", {'G', 'I', 'F', '8', '9', 'a'});
  const FolderIndex index = index_image_folder(d.string());
  std::map<std::string, std::string> problems;
  for (const auto& f : index.train) {
    problems[f.path] = f.problem;
  }
  EXPECT_EQ(problems.size(), 7U);
  EXPECT_EQ(problems["a/1.png"], "");
  EXPECT_EQ(problems["a/fifo.png"], "is not a regular file");
  EXPECT_NE(problems["a/loop1.png"].find("cannot be read"), std::string::npos);
  EXPECT_NE(problems["b/n\xe9.png"].find("not valid UTF-8"), std::string::npos);
  EXPECT_NE(problems["b/old.gif"].find("BMP and GIF"), std::string::npos);

  // Decoding lists them and never opens the FIFO.
  const TempDir cache;
  DecodeOptions options;
  options.cache_dir = cache.path().string();
  const DecodedImages decoded =
      decode_image_files(d.string(), index.train, ImageSpec{}, /*color_auto=*/true, options);
  EXPECT_EQ(decoded.bad.size(), 5U);
  EXPECT_EQ(decoded.spec.height, 3);
  EXPECT_EQ(decoded.spec.width, 4);
  EXPECT_EQ(decoded.spec.color_mode, ColorMode::kGrayscale);
  EXPECT_NE(bad_images_text(decoded.bad).find("a/fifo.png: is not a regular file"),
            std::string::npos);
}

// serve's sample: the test files spread evenly, so that every class shows,
// each labelled by the model's class of its folder.
TEST(ImageFolder, TestSampleSpreadsOverTheClasses) {
  TempDir tmp;
  const fs::path d = tmp.path() / "data";
  for (int c = 0; c < 3; ++c) {
    for (int i = 0; i < 4; ++i) {
      const std::string cls = std::string(1, static_cast<char>('a' + c));
      write_png(d / "train" / cls / "1.png", 0);
      write_png(d / "test" / cls / (std::to_string(i) + ".png"), static_cast<uint8_t>(c * 40 + i));
    }
  }
  DecodeOptions options;
  options.cache_dir = tmp.file("cache");
  std::vector<BadImage> bad;
  ImageSpec spec;
  spec.height = 3;
  spec.width = 4;
  // The model names its classes in another order than the folder's.
  const std::vector<std::string> model_classes = {"c", "b", "a"};
  // 5 of 12: files 0, 2, 4, 7, 9 (i * 12 / 5), i.e. a0 a2 b0 b3 c1.
  const Dataset five = folder_test_sample(d.string(), model_classes, spec, 5, options, bad);
  ASSERT_EQ(five.size(), 5);
  EXPECT_TRUE(bad.empty());
  const at::Tensor labels = five.labels.to(at::kLong);
  EXPECT_EQ(std::vector<int64_t>(labels.data_ptr<int64_t>(), labels.data_ptr<int64_t>() + 5),
            (std::vector<int64_t>{2, 2, 1, 1, 0}));
  const at::Tensor first_pixels = five.gather(at::arange(5)).select(1, 0).select(1, 0).select(1, 0);
  const at::Tensor values = first_pixels.mul(255).round().to(at::kLong);
  EXPECT_EQ(std::vector<int64_t>(values.data_ptr<int64_t>(), values.data_ptr<int64_t>() + 5),
            (std::vector<int64_t>{0, 2, 40, 43, 81}));
  // More than the folder has: every test file, in order.
  EXPECT_EQ(folder_test_sample(d.string(), model_classes, spec, 100, options, bad).size(), 12);
  // A class the model does not know is named.
  try {
    folder_test_sample(d.string(), {"a", "b"}, spec, 5, options, bad);
    ADD_FAILURE() << "no error";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("class c is not one of the model's (a, b)"),
              std::string::npos)
        << e.what();
  }
}

TEST(ImageFolder, DecodesOnceThenOpensTheCacheAndNoticesChanges) {
  const TempDir dir;
  const TempDir cache;
  const fs::path d = dir.path();
  write_png(d / "a" / "1.png", 10);
  write_png(d / "a" / "2.png", 20);
  write_png(d / "b" / "1.png", 30);
  write_bytes(d / "b" / "broken.png", {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0});
  DecodeOptions options;
  options.cache_dir = cache.path().string();
  options.threads = 2;
  // A run killed while decoding left its temporary file: the next one that
  // writes a cache removes it.
  const fs::path leftover = cache.path() / ".0123456789abcdef.tmp.999999999";
  write_bytes(leftover, {1, 2, 3});
  int64_t progress_calls = 0;
  options.on_progress = [&](const DecodeProgress& p) {
    ++progress_calls;
    EXPECT_EQ(p.total, 4);
  };
  FolderIndex index = index_image_folder(d.string());
  const DecodedImages first =
      decode_image_files(d.string(), index.train, ImageSpec{}, true, options);
  EXPECT_FALSE(first.from_cache);
  EXPECT_FALSE(fs::exists(leftover));
  EXPECT_GT(progress_calls, 0);
  ASSERT_FALSE(first.cache_path.empty()) << first.cache_problem;
  EXPECT_EQ(first.images.sizes(), (std::vector<int64_t>{4, 1, 3, 4}));
  EXPECT_EQ(first.images.scalar_type(), at::kByte);
  EXPECT_EQ(first.images[1][0][0][0].item<int>(), 20);
  EXPECT_EQ(first.images[2][0][2][3].item<int>(), 30 + 11);
  ASSERT_EQ(first.bad.size(), 1U);
  EXPECT_EQ(first.bad[0].path, "b/broken.png");
  EXPECT_EQ(first.ok, (std::vector<bool>{true, true, true, false}));

  progress_calls = 0;
  const DecodedImages second =
      decode_image_files(d.string(), index.train, ImageSpec{}, true, options);
  EXPECT_TRUE(second.from_cache);
  EXPECT_EQ(progress_calls, 0);
  EXPECT_EQ(second.cache_path, first.cache_path);
  EXPECT_TRUE(at::equal(second.images, first.images));
  ASSERT_EQ(second.bad.size(), 1U);
  EXPECT_EQ(second.bad[0].path, "b/broken.png");
  EXPECT_EQ(second.bad[0].reason, first.bad[0].reason);
  EXPECT_EQ(second.spec.height, 3);

  // A view of some records, as training reads them.
  const Dataset view = folder_dataset(second, {2, 0}, {1, 0});
  EXPECT_EQ(view.size(), 2);
  const at::Tensor x = view.gather(at::tensor(std::vector<int64_t>{0}, at::kLong));
  EXPECT_EQ(x.scalar_type(), at::kFloat);
  EXPECT_FLOAT_EQ(x[0][0][0][0].item<float>(), 30.0F / 255.0F);
  EXPECT_FLOAT_EQ(view.slice(1, 1)[0][0][0][1].item<float>(), 11.0F / 255.0F);

  // A changed file is noticed (its size and time), and the old cache goes.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  write_png(d / "a" / "2.png", 50);
  index = index_image_folder(d.string());
  const DecodedImages third =
      decode_image_files(d.string(), index.train, ImageSpec{}, true, options);
  EXPECT_FALSE(third.from_cache);
  EXPECT_EQ(third.images[1][0][0][0].item<int>(), 50);
  EXPECT_FALSE(fs::exists(first.cache_path));
  EXPECT_TRUE(fs::exists(third.cache_path));
  // A cut cache file is not trusted: it is decoded again. (Caches are only
  // ever replaced by a rename, never cut in place: this test's cut changes
  // what `third` maps, so it is compared with a copy.)
  const at::Tensor before = third.images.clone();
  fs::resize_file(third.cache_path, 4100);
  const DecodedImages fourth =
      decode_image_files(d.string(), index.train, ImageSpec{}, true, options);
  EXPECT_FALSE(fourth.from_cache);
  EXPECT_TRUE(at::equal(fourth.images, before));
}

TEST(ImageFolder, ImagesOfManySizesNeedASize) {
  const TempDir dir;
  const TempDir cache;
  const fs::path d = dir.path();
  write_png(d / "a" / "1.png", 1, 4, 3);
  write_png(d / "b" / "1.png", 1, 5, 5);
  DecodeOptions options;
  options.cache_dir = cache.path().string();
  const FolderIndex index = index_image_folder(d.string());
  try {
    decode_image_files(d.string(), index.train, ImageSpec{}, true, options);
    FAIL() << "no error";
  } catch (const DataError& e) {
    EXPECT_EQ(e.remedy(), Remedy::kImageSize);
    EXPECT_NE(std::string(e.what()).find("not all of one size (2 sizes: 3x4 (1 files, e.g. "
                                         "a/1.png), 5x5 (1 files, e.g. b/1.png))"),
              std::string::npos)
        << e.what();
  }
  ImageSpec spec;
  spec.height = 6;
  spec.width = 6;
  spec.color_mode = ColorMode::kRgb;
  const DecodedImages decoded = decode_image_files(d.string(), index.train, spec, false, options);
  EXPECT_EQ(decoded.images.sizes(), (std::vector<int64_t>{2, 3, 6, 6}));
  EXPECT_TRUE(decoded.bad.empty());
}

TEST(ImageFolder, KindsOfFilesByTheirNames) {
  EXPECT_EQ(image_file_kind("a.png"), ImageFileKind::kDecoded);
  EXPECT_EQ(image_file_kind("a.PNG"), ImageFileKind::kDecoded);
  EXPECT_EQ(image_file_kind("a.b.Jpg"), ImageFileKind::kDecoded);
  EXPECT_EQ(image_file_kind("a.jpeg"), ImageFileKind::kDecoded);
  EXPECT_EQ(image_file_kind("a.bmp"), ImageFileKind::kUndecoded);
  EXPECT_EQ(image_file_kind("a.GIF"), ImageFileKind::kUndecoded);
  EXPECT_EQ(image_file_kind("a.pgm"), ImageFileKind::kPgm);
  EXPECT_EQ(image_file_kind("a.png.txt"), ImageFileKind::kOther);
  EXPECT_EQ(image_file_kind("png"), ImageFileKind::kOther);
  EXPECT_EQ(image_file_kind(""), ImageFileKind::kOther);
  EXPECT_EQ(file_count_text(1), "1 image file");
  EXPECT_EQ(file_count_text(0), "0 image files");
  EXPECT_EQ(file_count_text(100000), "100000 image files");
}

TEST(ImageFolder, AStopGivesUpLeavesNoTemporaryFileAndTheNextRunDecodes) {
  const TempDir dir;
  const TempDir cache;
  const fs::path d = dir.path();
  for (int i = 0; i < 40; ++i) {
    write_png(d / (i % 2 == 0 ? "a" : "b") / (std::to_string(i) + ".png"), static_cast<uint8_t>(i));
  }
  const FolderIndex index = index_image_folder(d.string());
  std::atomic<bool> stop{true};
  DecodeOptions options;
  options.cache_dir = cache.path().string();
  options.threads = 2;
  options.stop = &stop;
  ImageSpec given;
  given.height = 3;
  given.width = 4;
  given.color_mode = ColorMode::kGrayscale;
  // Stopped before decoding (the spec given) and before reading the
  // headers (the size and colours taken from the images).
  for (const bool automatic : {false, true}) {
    try {
      decode_image_files(d.string(), index.train, automatic ? ImageSpec{} : given, automatic,
                         options);
      ADD_FAILURE() << "no error";
    } catch (const Interrupted& e) {
      EXPECT_EQ(std::string(e.what()).rfind(d.string() + ": stopped while ", 0), 0U) << e.what();
    }
    EXPECT_TRUE(fs::is_empty(cache.path())) << "automatic " << automatic;
  }
  // Stopped from another thread while decoding.
  stop = false;
  int64_t calls = 0;
  options.on_progress = [&](const DecodeProgress&) {
    if (++calls == 1) {
      stop = true;
    }
  };
  bool interrupted = false;
  try {
    decode_image_files(d.string(), index.train, given, false, options);
    // The 40 files may all be decoded before the first progress report:
    // then nothing was left to stop.
  } catch (const Interrupted& e) {
    interrupted = true;
    EXPECT_NE(std::string(e.what()).find("nothing was cached"), std::string::npos) << e.what();
    for (const auto& entry : fs::directory_iterator(cache.path())) {
      ADD_FAILURE() << "left behind: " << entry.path();
    }
  }
  // The next run decodes them all.
  stop = false;
  options.on_progress = nullptr;
  const FolderIndex again = index_image_folder(d.string());
  const DecodedImages decoded = decode_image_files(d.string(), again.train, given, false, options);
  EXPECT_EQ(decoded.images.size(0), 40);
  EXPECT_TRUE(decoded.bad.empty());
  for (size_t i = 0; i < again.train.size(); ++i) {
    const std::string name = fs::path(again.train[i].path).stem().string();
    EXPECT_EQ(decoded.images[static_cast<int64_t>(i)][0][0][0].item<int>(), std::stoi(name));
  }
  ASSERT_FALSE(decoded.cache_path.empty()) << decoded.cache_problem;
  EXPECT_EQ(decoded.from_cache, !interrupted);
}

TEST(ImageFolder, WithoutACacheFolderTheImagesAreHeldInMemory) {
  const TempDir dir;
  const fs::path d = dir.path();
  write_png(d / "a" / "1.png", 1);
  write_png(d / "b" / "1.png", 2);
  write_bytes(d / "not-a-folder", {1});
  DecodeOptions options;
  options.cache_dir = (d / "not-a-folder" / "cache").string();
  const FolderIndex index = index_image_folder(d.string());
  const DecodedImages decoded =
      decode_image_files(d.string(), index.train, ImageSpec{}, true, options);
  EXPECT_TRUE(decoded.cache_path.empty());
  EXPECT_NE(decoded.cache_problem.find("held in memory"), std::string::npos);
  EXPECT_EQ(decoded.images[1][0][0][0].item<int>(), 2);
}

TEST(ImageFolder, MetadataNamesTheClassesSizeAndColours) {
  ImageSpec spec;
  spec.height = 32;
  spec.width = 48;
  spec.color_mode = ColorMode::kRgb;
  const auto m = folder_metadata({{"dataset", "mnist"}, {"keep", 1}}, {"cat", "dog"}, spec);
  EXPECT_EQ(m.dump(),
            R"({"keep":1,"classNames":["cat","dog"],"imageSize":[32,48],"colorMode":"rgb"})");
}

}  // namespace
}  // namespace mnist
