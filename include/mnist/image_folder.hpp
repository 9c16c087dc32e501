// Folders of image files as datasets, found and split as Keras 3's
// image_dataset_from_directory(labels="inferred") finds and splits them
// (docs/data.md), decoded once on all cores into a uint8 cache on disk that
// later runs memory-map.
//
//   DIR/<class>/**/*.png|jpg|jpeg          one folder of class subfolders
//   DIR/train/<class>/...                  or its subsets in subfolders:
//   DIR/validation/<class>/... (or val/)   validation and test are optional
//   DIR/test/<class>/...
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include "mnist/data.hpp"
#include "mnist/image.hpp"
#include "mnist/model.hpp"

namespace mnist {

/// One image file of a folder dataset.
struct ImageFile {
  std::string path;      ///< relative to the dataset folder ("cat/001.png", "train/cat/001.png")
  int64_t label = 0;     ///< its class: an index into FolderIndex::class_names
  int64_t bytes = 0;     ///< its size when indexed
  int64_t mtime_ns = 0;  ///< its modification time when indexed
  std::string problem;   ///< why it cannot be a record ("": none found yet)
};

/// A folder dataset's files, in Keras's order: class by class (classes in
/// sorted order), within a class its folders in sorted order of their paths
/// and the files of each in sorted order of their names.
struct FolderIndex {
  std::string dir;
  std::vector<std::string> class_names;  ///< the class subfolders' names, sorted
  bool subsets = false;                  ///< DIR/train/... (else DIR/<class>/...)
  std::string validation_folder;         ///< "validation", "val" or "" (none)
  std::vector<ImageFile> train;          ///< every file of a one-folder dataset
  std::vector<ImageFile> validation;
  std::vector<ImageFile> test;
  int64_t other_files = 0;  ///< files of other kinds (not counted as images)
  int64_t hidden = 0;       ///< names starting with '.', skipped (.DS_Store, ._x.jpg)
};

/// What a file's name (its extension, any case) says it holds. Keras's
/// image_dataset_from_directory indexes .png .jpg .jpeg .bmp .gif; this tool
/// decodes the first three (kDecoded) and reports the other two
/// (kUndecoded); `predict` also reads .pgm (kPgm), which a folder dataset
/// does not index (Keras does not).
enum class ImageFileKind { kOther, kDecoded, kUndecoded, kPgm };
ImageFileKind image_file_kind(const std::string& name);

/// "1 image file", "N image files".
std::string file_count_text(size_t n);

/// Whether `dir` is a folder of class subfolders (or of train/ ...) rather
/// than a folder of MNIST's IDX files.
bool is_image_folder(const std::string& dir);

/// Finds the classes and image files of `dir`. Files are indexed as Keras
/// indexes them (extensions .png .jpg .jpeg .bmp .gif, any case; class
/// folders may be links; folders inside them are walked but links to
/// folders are not followed, so no link loop can make it walk forever),
/// except that names starting with '.' are skipped. Files that cannot be
/// records (not regular files, names that are not UTF-8, .bmp and .gif,
/// which this tool does not decode) get a `problem`. Throws DataError for a
/// folder that is not a dataset: missing or unreadable, no class
/// subfolders, one class only, a class folder without images, class names
/// that are not UTF-8, subsets whose classes differ.
FolderIndex index_image_folder(const std::string& dir);

/// The order numpy's legacy RandomState(seed).shuffle puts n things in (the
/// Mersenne Twister seeded by init_genrand, Fisher-Yates from the end with
/// masked rejection sampling): how Keras's index_directory shuffles files.
/// order[i] is the index of the thing that ends at position i.
std::vector<int64_t> numpy_shuffle_order(int64_t n, uint32_t seed);

/// The training, validation and test files. A folder with subsets keeps
/// them (its train/ cut for validation when it has no validation folder);
/// otherwise the files are shuffled as Keras shuffles them with `seed`
/// (modulo 2^32, numpy's seed range) and cut as Keras cuts them: the last
/// int(validation_split * n) validate; before them, int(test_split * n)
/// test; the rest train (without test_split, exactly Keras's training and
/// validation subsets). Files with a problem stay in their subset.
struct FolderSplit {
  std::vector<ImageFile> train;
  std::vector<ImageFile> validation;
  std::vector<ImageFile> test;
};
FolderSplit split_image_folder(const FolderIndex& index,
                               double validation_split,
                               double test_split,
                               uint64_t seed);

/// An image that cannot be a record, and why.
struct BadImage {
  std::string path;  ///< relative to the dataset folder
  std::string reason;
};

/// Decoding's progress, for a progress bar.
struct DecodeProgress {
  int64_t done = 0;
  int64_t total = 0;
  double seconds = 0;
};

/// How the images are decoded and where the cache lives.
struct DecodeOptions {
  std::string cache_dir;  ///< "": default_cache_dir(); the cache is kept there
  int threads = 0;        ///< 0: one per core
  std::function<void(const DecodeProgress&)> on_progress;
  const std::atomic<bool>* stop = nullptr;  ///< true: give up (throws Interrupted)
};

/// $XDG_CACHE_HOME/mnist-train/images, else $HOME/.cache/mnist-train/images.
std::string default_cache_dir();

/// The images of `files` (all of a dataset's subsets together), decoded.
struct DecodedImages {
  at::Tensor images;          ///< [N,C,H,W] uint8, channels-last memory, one row per file
  ImageSpec spec;             ///< the size and colour mode they were decoded at
  std::vector<BadImage> bad;  ///< in file order
  std::vector<bool> ok;       ///< per file: decoded (false: in `bad`)
  bool from_cache = false;    ///< opened, not decoded
  std::string cache_path;     ///< "" when it is held in memory
  std::string cache_problem;  ///< why there is no cache file (it is held in memory)
  double seconds = 0;
};

/// Decodes `files` of folder `dir` at `spec` (ImageSpec from image.hpp; a
/// height or width of 0 takes the images' own size, which must then be one
/// size for all; `color_auto` takes grayscale when every image is
/// grayscale, else rgb) on all cores, or opens the cache a run before made
/// of the same files (names, sizes, times) and settings. The cache is
/// written to a temporary file renamed into place, and memory-mapped: a
/// dataset larger than the memory trains from the page cache. Where no
/// cache can be written, the images are held in memory and cache_problem
/// says why. Throws DataError when the images' sizes differ and no size is
/// given; IoError when the cache cannot be read; Interrupted when stopped.
DecodedImages decode_image_files(const std::string& dir,
                                 const std::vector<ImageFile>& files,
                                 ImageSpec spec,
                                 bool color_auto,
                                 const DecodeOptions& options);

/// A dataset of the records `rows` of `decoded` (rows into its images),
/// labelled by `labels`: a view, nothing copied.
Dataset folder_dataset(const DecodedImages& decoded,
                       const std::vector<int64_t>& rows,
                       const std::vector<int64_t>& labels);

/// The first 20 bad images as "path: reason" lines and a count of the rest.
std::string bad_images_text(const std::vector<BadImage>& bad);

/// How `model` reads image files: at its input's [H,W,C] (C 1 or 3; the
/// metadata's colorMode and interpolation when it has them, bilinear else),
/// for a model trained on a folder (its metadata has "imageSize") or any
/// model whose input is not MNIST's 28x28x1; nullopt for MNIST's models,
/// whose images are prepared as MNIST's digits were (image.hpp). Throws
/// ConfigError for a model whose input is no such image.
std::optional<ImageSpec> model_image_spec(const Model& model, const std::string& origin);

/// A folder's images to test `class_names`' model on: its test/ subset
/// when it has one, else every image; each labelled by its class folder's
/// position in `class_names` (a folder of a class the model does not know
/// is a DataError naming it). Bad images are left out and listed in `bad`.
/// `limit` > 0: the first `limit` files only.
Dataset folder_test_set(const std::string& dir,
                        const std::vector<std::string>& class_names,
                        const ImageSpec& spec,
                        int64_t limit,
                        const DecodeOptions& options,
                        std::vector<BadImage>& bad);

/// `count` of the files folder_test_set reads (all of them when fewer),
/// spread evenly over them (file i * n / count of n, in index order), so
/// that a sample of a folder whose files come class by class shows every
/// class: the test images `serve` shows on its page. A folder without a
/// test/ subset has no test files of its own: when `held_out` (the test
/// files a training split off it, history.json's data.files.test, paths
/// relative to the folder) names some of its files, those only.
Dataset folder_test_sample(const std::string& dir,
                           const std::vector<std::string>& class_names,
                           const ImageSpec& spec,
                           int64_t count,
                           const DecodeOptions& options,
                           std::vector<BadImage>& bad,
                           const std::vector<std::string>& held_out = {});

/// The model's userDefinedMetadata for a folder dataset: "classNames",
/// "imageSize" [H, W], "colorMode" (Keras's name), and "interpolation" and
/// "cropToAspectRatio" when they are not bilinear and false; other keys of
/// `metadata` kept ("dataset" and "labels", MNIST's, removed).
nlohmann::ordered_json folder_metadata(nlohmann::ordered_json metadata,
                                       const std::vector<std::string>& class_names,
                                       const ImageSpec& spec);

}  // namespace mnist
