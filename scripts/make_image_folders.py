#!/usr/bin/env python3
"""Writes MNIST or Fashion-MNIST as the image folders users bring: one folder
per class of PNG or JPEG files, in the layout Keras 3's
image_dataset_from_directory reads (docs/data.md, "Test data: MNIST as image
folders"). These folders are test data for mnist-train's folder reader.

Layouts:
  split (default)  OUT/train/<class>/<n>.<ext> and OUT/test/<class>/<n>.<ext>
  flat             OUT/<class>/<n>.<ext>, the training records only (for
                   --validation-split / --test-split)
<class> is the class name: 0..9 for MNIST; Fashion-MNIST's ten names with
'/' (the one character a folder name cannot hold) replaced by '_':
T-shirt_top, Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag,
"Ankle boot" (the space kept, as users' folder names have them). <n> is the
record's index in its IDX file, zero-padded to 5 digits, so each file can be
traced to its record.

Pixels: the 28x28 record is padded by --pad pixels of background on every
side (default 0 for grayscale, 2 for rgb: 32x32 as LeNet-5's MNIST), then
resized to --size (PIL bilinear) when that differs from 28 + 2*pad.
grayscale: the record's bytes as they are (white ink on black); a 28x28 PNG
holds exactly the IDX bytes (--check verifies it).
rgb: each image tinted. For split s (train 0, test 1) of `count` records in
its file (all of them, whatever the limits):
    rng = numpy.random.default_rng([seed, s])
    ink = rng.integers(128, 256, size=(count, 3))  # light: each channel 128..255
    bg = rng.integers(0, 64, size=(count, 3))      # dark: each channel 0..63
record i takes row i of each, and each pixel of gray value v (0..255)
becomes, per channel c,
    out_c = (bg[i, c] * (255 - v) + ink[i, c] * v + 127) // 255
(v = 0 is the background, v = 255 full ink; rounded to nearest). The colours
depend on the seed, the split and the record index only, never on the label,
so the colour carries no information about the class. The same seed gives
the same colours with the same numpy version.

Writing goes to a hidden folder next to OUT (.<name>.partial-<pid>) renamed
to OUT at the end, so an interrupted run never leaves a folder that looks
complete; partial folders of runs that are gone are removed by the next run.

--check writes nothing: it reads every file OUT should hold (for the same
options) back with PIL and compares it with its record. A PNG must hold the
rendered pixels exactly; a JPEG must decode exactly to what PIL's encoder
makes of them at the same --quality (JPEG is lossy but deterministic; run
--check with the PIL that wrote the files), and its mean and max absolute
error from the rendered pixels are reported. Missing, extra or undecodable
files fail.

Exit codes: 0 success; 1 --check found problems; 2 bad options; 3 bad IDX
data; 4 output folder problem.
"""

import argparse
import gzip
import io
import json
import multiprocessing
import os
import re
import shutil
import signal
import sys
import time
import zlib

try:
    import numpy as np
    from PIL import Image
except ImportError as e:
    sys.exit(f"make_image_folders.py: {e} in {sys.executable}; it needs PIL and numpy "
             "(Debian: apt-get install python3-pil python3-numpy, or scripts/setup.sh --tests, "
             "for /usr/bin/python3)")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGES_MAGIC = 0x00000803  # unsigned byte, 3 dimensions (include/mnist/idx.hpp)
LABELS_MAGIC = 0x00000801  # unsigned byte, 1 dimension
SIDE = 28
FILES = {  # split -> (images, labels), as include/mnist/data.hpp names them
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
SPLIT_ID = {"train": 0, "test": 1}
# Class names in label order (src/data.cpp, class_names).
CLASS_NAMES = {
    "mnist": [str(d) for d in range(10)],
    "fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
}
EXTENSION = {"png": "png", "jpeg": "jpg"}
PIL_FORMAT = {"png": "PNG", "jpeg": "JPEG"}
NAME_DIGITS = 5  # 60,000 records: 00000..59999


class Failure(Exception):
    """An error for the user: one line naming the path, and an exit code."""

    def __init__(self, message, code):
        super().__init__(message)
        self.code = code


def folder_name(class_name):
    """A class name as a folder name: '/' cannot be in one, so it becomes '_'."""
    return class_name.replace("/", "_")


def default_data_dir(dataset):
    """As mnist-train finds them (src/data.cpp, default_data_dir)."""
    if dataset == "mnist":
        return os.environ.get("MNIST_DATA_DIR") or os.path.join(ROOT, "data", "mnist")
    return os.environ.get("FASHION_MNIST_DIR") or "/usr/share/datasets/fashion-mnist"


def idx_path(data_dir, name):
    """data_dir/name, or data_dir/name.gz when only the compressed file exists."""
    path = os.path.join(data_dir, name)
    if os.path.exists(path) or not os.path.exists(path + ".gz"):
        return path
    return path + ".gz"


def read_idx(path, magic):
    """The IDX file's dimensions and data bytes, checked as mnist-train's
    reader checks them (src/idx.cpp): magic, 28x28 images, exact length."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise Failure(f"{path}: not found (nor {os.path.basename(path)}.gz); "
                      "run scripts/download_mnist.sh or give --data-dir", 3)
    except OSError as e:
        raise Failure(f"{path}: cannot read ({e.strerror})", 3)
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise Failure(f"{path}: corrupt gzip data ({e})", 3)
    kind = "images" if magic == IMAGES_MAGIC else "labels"
    if len(raw) < 4:
        raise Failure(f"{path}: truncated: {len(raw)} bytes, but an IDX header needs at "
                      f"least 4 (expected an MNIST {kind} file)", 3)
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise Failure(f"{path}: bad magic {found} (expected {magic} for MNIST {kind})", 3)
    rank = 3 if magic == IMAGES_MAGIC else 1
    header = 4 + 4 * rank
    if len(raw) < header:
        raise Failure(f"{path}: truncated header: expected {rank} dimension sizes after the "
                      f"magic, found {len(raw) - 4} bytes", 3)
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
    if rank == 3 and dims[1:] != [SIDE, SIDE]:
        raise Failure(f"{path}: wrong dimensions {'x'.join(map(str, dims))} "
                      f"(expected Nx{SIDE}x{SIDE})", 3)
    payload = 1
    for d in dims:
        payload *= d
    if len(raw) - header != payload:
        raise Failure(f"{path}: truncated or record count mismatch: the header promises "
                      f"{dims[0]} records ({payload} data bytes), but the file holds "
                      f"{len(raw) - header} data bytes", 3)
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def load_split(data_dir, split, limit):
    """(images [n,28,28], labels [n], count in the file) of one split."""
    images_name, labels_name = FILES[split]
    images_path = idx_path(data_dir, images_name)
    labels_path = idx_path(data_dir, labels_name)
    images = read_idx(images_path, IMAGES_MAGIC)
    labels = read_idx(labels_path, LABELS_MAGIC)
    if len(images) != len(labels):
        raise Failure(f"{images_path}: {len(images)} images, but {labels_path} holds "
                      f"{len(labels)} labels", 3)
    if len(images) == 0:
        raise Failure(f"{images_path}: the {split} images file holds no images", 3)
    bad = np.flatnonzero(labels > 9)
    if bad.size:
        raise Failure(f"{labels_path}: label {labels[bad[0]]} at record {bad[0]} is out of "
                      "range (expected 0..9)", 3)
    n = len(images) if limit is None else min(limit, len(images))
    return images[:n], labels[:n], len(images)


def tint_colours(seed, split, count):
    """ink and background colours [count, 3] of the split's records (see the
    module docstring): drawn for every record of the file, so that a record's
    colours do not depend on --limit-*."""
    rng = np.random.default_rng([seed, SPLIT_ID[split]])
    ink = rng.integers(128, 256, size=(count, 3), dtype=np.int64)
    bg = rng.integers(0, 64, size=(count, 3), dtype=np.int64)
    return ink, bg


def render(records, inks, bgs, opts):
    """The pixels written for some records [n,28,28] with their colours
    [n,3]: [n,size,size] or [n,size,size,3] uint8."""
    p = opts["pad"]
    a = np.pad(records, ((0, 0), (p, p), (p, p))) if p else records
    if a.shape[1] != opts["size"]:
        side = (opts["size"], opts["size"])
        a = np.stack([np.asarray(Image.fromarray(r, "L").resize(side, Image.BILINEAR))
                      for r in a])
    if opts["color"] == "grayscale":
        return np.ascontiguousarray(a)
    # At most 255 * 255 + 127: uint16 holds it, and is faster than int64.
    v = a.astype(np.uint16)[..., None]
    ink = inks.astype(np.uint16)[:, None, None, :]
    bg = bgs.astype(np.uint16)[:, None, None, :]
    return ((bg * (255 - v) + ink * v + 127) // 255).astype(np.uint8)


def file_path(root, opts, split, label, index):
    parts = [root] if opts["layout"] == "flat" else [root, split]
    name = f"{index:0{NAME_DIGITS}d}.{EXTENSION[opts['format']]}"
    return os.path.join(*parts, opts["class_folders"][label], name)


def encode(pixels, opts):
    """The file's bytes: PNG, or JPEG at --quality (PIL's default chroma
    subsampling, 4:2:0, as most cameras write)."""
    out = io.BytesIO()
    image = Image.fromarray(pixels, "L" if pixels.ndim == 2 else "RGB")
    if opts["format"] == "jpeg":
        image.save(out, "JPEG", quality=opts["quality"])
    else:
        image.save(out, "PNG")
    return out.getvalue()


def quiet_worker():
    """Ctrl-C reaches every process of the group: the main process cleans
    up and says so; the workers just end with it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def write_chunk(task):
    """Worker: writes one chunk of records; returns (images, bytes)."""
    root, opts, split, start, records, labels, inks, bgs = task
    total = 0
    rendered = render(records, inks, bgs, opts)
    for k in range(len(records)):
        path = file_path(root, opts, split, int(labels[k]), start + k)
        data = encode(rendered[k], opts)
        with open(path, "wb") as f:
            f.write(data)
        total += len(data)
    return len(records), total


def check_chunk(task):
    """Worker: compares one chunk's files with their records; returns
    (problems, [(mean abs error, max abs error, path)] for JPEG)."""
    root, opts, split, start, records, labels, inks, bgs = task
    problems, errors = [], []
    mode = "L" if opts["color"] == "grayscale" else "RGB"
    size = opts["size"]
    rendered = render(records, inks, bgs, opts)
    for k in range(len(records)):
        path = file_path(root, opts, split, int(labels[k]), start + k)
        expected = rendered[k]
        try:
            with open(path, "rb") as f:
                image = Image.open(f)
                image.load()
                found_format, found_mode, found_size = image.format, image.mode, image.size
                pixels = np.asarray(image)
        except FileNotFoundError:
            problems.append(f"{path}: missing")
            continue
        except Exception as e:  # PIL raises many kinds on a corrupt file
            problems.append(f"{path}: cannot be decoded ({type(e).__name__}: {e})")
            continue
        if found_format != PIL_FORMAT[opts["format"]] or found_mode != mode or \
                found_size != (size, size):
            problems.append(f"{path}: expected a {size}x{size} {mode} {PIL_FORMAT[opts['format']]}"
                            f" image, found a {found_size[0]}x{found_size[1]} {found_mode} "
                            f"{found_format} image")
            continue
        if opts["format"] == "jpeg":
            # JPEG is lossy, but deterministic: the file must decode to what
            # PIL's encoder makes of the record at the same quality.
            error = np.abs(pixels.astype(np.int16) - expected.astype(np.int16))
            errors.append((float(error.mean()), int(error.max()), path))
            expected = np.asarray(Image.open(io.BytesIO(encode(expected, opts))))
        diff = pixels != expected
        if diff.any():
            where = tuple(np.argwhere(diff)[0].tolist())
            problems.append(f"{path}: {np.count_nonzero(diff)} values differ from what "
                            f"{split} record {start + k} gives (first at {where}: "
                            f"{pixels[where]} instead of {expected[where]})")
    return problems, errors


def tasks_for(root, opts, splits, chunk):
    tasks = []
    for split, (images, labels, count) in splits.items():
        ink, bg = tint_colours(opts["seed"], split, count)
        for start in range(0, len(images), chunk):
            end = min(start + chunk, len(images))
            tasks.append((root, opts, split, start, images[start:end], labels[start:end],
                          ink[start:end], bg[start:end]))
    return tasks


def sweep_partials(out):
    """Removes .<name>.partial-<pid> (and .old-<pid>, a replaced OUT being
    removed) folders next to OUT whose run is gone."""
    parent, name = os.path.split(out)
    pattern = re.compile(r"\." + re.escape(name) + r"\.(?:partial|old)-(\d+)$")
    for entry in os.listdir(parent or "."):
        m = pattern.match(entry)
        if not m:
            continue
        try:
            os.kill(int(m.group(1)), 0)
            continue  # that run is still going
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)


def prepare_out(out, force):
    """Checks that OUT may be written; returns the partial folder to write."""
    if os.path.lexists(out) and not os.path.isdir(out):
        raise Failure(f"{out}: exists and is not a folder", 4)
    if os.path.isdir(out) and os.listdir(out) and not force:
        raise Failure(f"{out}: the folder is not empty; give --force to replace it", 4)
    parent = os.path.dirname(out) or "."
    try:
        os.makedirs(parent, exist_ok=True)
        sweep_partials(out)
        partial = os.path.join(parent, f".{os.path.basename(out)}.partial-{os.getpid()}")
        shutil.rmtree(partial, ignore_errors=True)
        os.mkdir(partial)
    except OSError as e:
        raise Failure(f"{e.filename or out}: cannot create the output folder ({e.strerror})", 4)
    return partial


def move_into_place(partial, out):
    """Renames the finished partial folder to OUT (replacing an empty folder
    in one rename; a non-empty one, allowed by --force, is moved aside
    first). Returns the folder moved aside, for the caller to remove, or
    None."""
    old = None
    try:
        if os.path.isdir(out) and os.listdir(out):
            old = os.path.join(os.path.dirname(out) or ".",
                               f".{os.path.basename(out)}.old-{os.getpid()}")
            os.rename(out, old)
        os.rename(partial, out)
    except OSError as e:
        raise Failure(f"{out}: cannot rename {partial} to it ({e.strerror})", 4)
    return old


def expected_files(root, opts, splits):
    files = set()
    for split, (images, labels, _) in splits.items():
        for index, label in enumerate(labels):
            files.add(file_path(root, opts, split, int(label), index))
    return files


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Write MNIST or Fashion-MNIST as class folders of PNG or JPEG files "
                    "(OUT/train/<class>/<n>.png ...), or --check such a folder.",
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", metavar="OUT", help="the folder to write (or --check)")
    p.add_argument("--dataset", choices=sorted(CLASS_NAMES), default="mnist",
                   help="which dataset's IDX files and class names (default: mnist)")
    p.add_argument("--data-dir", help="the folder of the four IDX files, raw or .gz (default: "
                   "$MNIST_DATA_DIR or data/mnist for mnist; $FASHION_MNIST_DIR or "
                   "/usr/share/datasets/fashion-mnist for fashion-mnist)")
    p.add_argument("--layout", choices=["split", "flat"], default="split",
                   help="split: OUT/train/<class>, OUT/test/<class> (default); "
                        "flat: the training records only, in OUT/<class>")
    p.add_argument("--format", choices=["png", "jpeg"], default="png",
                   help="file format (default png); JPEG files end in .jpg")
    p.add_argument("--quality", type=int, default=95,
                   help="JPEG quality 1..95 (default 95; PIL's default subsampling)")
    p.add_argument("--color", choices=["grayscale", "rgb"], default="grayscale",
                   help="grayscale: the IDX bytes; rgb: tinted (see below) (default grayscale)")
    p.add_argument("--pad", type=int,
                   help="background pixels added on each side (default 0 grayscale, 2 rgb)")
    p.add_argument("--size", type=int,
                   help="side of the square images written: 28 + 2*pad, or resized to it "
                        "with PIL bilinear (default 28 + 2*pad)")
    p.add_argument("--limit-train", type=int, metavar="N", help="only the first N training records")
    p.add_argument("--limit-test", type=int, metavar="N", help="only the first N test records")
    p.add_argument("--seed", type=int, default=0, help="the tints' seed (default 0)")
    p.add_argument("--force", action="store_true", help="replace a non-empty OUT")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="processes (default: os.cpu_count())")
    p.add_argument("--check", action="store_true",
                   help="write nothing; compare OUT's files with the records (same options)")
    a = p.parse_args(argv)
    if not 1 <= a.quality <= 95:
        p.error(f"--quality: must be 1..95, got {a.quality}")
    if a.pad is None:
        a.pad = 2 if a.color == "rgb" else 0
    if not 0 <= a.pad <= 1000:
        p.error(f"--pad: must be 0..1000, got {a.pad}")
    if a.size is None:
        a.size = SIDE + 2 * a.pad
    if not 1 <= a.size <= 4096:
        p.error(f"--size: must be 1..4096, got {a.size}")
    for flag, value in (("--limit-train", a.limit_train), ("--limit-test", a.limit_test)):
        if value is not None and value < 1:
            p.error(f"{flag}: must be at least 1, got {value}")
    if not 1 <= a.workers <= 1024:
        p.error(f"--workers: must be 1..1024, got {a.workers}")
    if a.seed < 0:
        p.error(f"--seed: must be at least 0, got {a.seed}")
    if a.layout == "flat" and a.limit_test is not None:
        p.error("--limit-test: the flat layout holds training records only")
    a.out = os.path.normpath(a.out)
    return a


def run(a):
    data_dir = a.data_dir or default_data_dir(a.dataset)
    if not os.path.isdir(data_dir):
        raise Failure(f"{data_dir}: data folder not found" +
                      ("; install dataset-fashion-mnist (scripts/setup.sh --fashion-mnist) or set "
                       "$FASHION_MNIST_DIR" if a.dataset == "fashion-mnist" else
                       "; run scripts/download_mnist.sh or give --data-dir"), 3)
    splits = {"train": load_split(data_dir, "train", a.limit_train)}
    if a.layout == "split":
        splits["test"] = load_split(data_dir, "test", a.limit_test)
    opts = {"layout": a.layout, "format": a.format, "quality": a.quality, "color": a.color,
            "pad": a.pad, "size": a.size, "seed": a.seed,
            "class_folders": [folder_name(c) for c in CLASS_NAMES[a.dataset]]}
    total = sum(len(s[0]) for s in splits.values())
    # Chunks of at most 500 records, at least four per worker: balanced work.
    chunk = max(1, min(500, -(-total // (4 * a.workers))))
    started = time.monotonic()
    if a.check:
        return check(a, opts, splits, chunk, started)

    partial = prepare_out(a.out, a.force)
    try:
        dirs = {os.path.dirname(f) for f in expected_files(partial, opts, splits)}
        for d in sorted(dirs):
            os.makedirs(d, exist_ok=True)
        written = size = 0
        with multiprocessing.Pool(a.workers, quiet_worker) as pool:
            for n, b in pool.imap_unordered(write_chunk, tasks_for(partial, opts, splits, chunk)):
                written += n
                size += b
        old = move_into_place(partial, a.out)
    except OSError as e:
        raise Failure(f"{e.filename or partial}: cannot write ({e.strerror})", 4)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    seconds = time.monotonic() - started
    counts = ", ".join(f"{len(s[0])} {name}" for name, s in splits.items())
    print(f"wrote {written} images ({counts}) to {a.out} in {seconds:.1f} s "
          f"({written / seconds:.0f} images/s, {a.workers} workers, {size} bytes of files)")
    if old:
        # Not timed: on a file system mounted with discard, each unlink waits
        # for the device (minutes for 70,000 files).
        print(f"removing the replaced folder ({old})", flush=True)
        shutil.rmtree(old, ignore_errors=True)
    return 0


def check(a, opts, splits, chunk, started):
    if not os.path.isdir(a.out):
        raise Failure(f"{a.out}: no such folder to check", 4)
    expected = expected_files(a.out, opts, splits)
    problems, errors = [], []
    found = set()
    for d, _, names in os.walk(a.out):
        found.update(os.path.join(d, n) for n in names)
    problems += [f"{f}: not written by these options (an extra file)"
                 for f in sorted(found - expected)]
    extra = len(problems)
    with multiprocessing.Pool(a.workers, quiet_worker) as pool:
        for p, e in pool.imap(check_chunk, tasks_for(a.out, opts, splits, chunk)):
            problems += p
            errors += e
    seconds = time.monotonic() - started
    report = {"checked": len(expected), "seconds": round(seconds, 2), "problems": len(problems)}
    if errors:
        worst = max(errors)
        report.update({"jpeg_mean_abs_error": round(sum(e[0] for e in errors) / len(errors), 3),
                       "jpeg_max_abs_error": max(e[1] for e in errors),
                       "jpeg_worst_image_mean_abs_error": round(worst[0], 3),
                       "jpeg_worst_image": worst[2]})
    for p in problems[:20]:
        print(f"check: {p}", file=sys.stderr)
    if len(problems) > 20:
        print(f"check: ... and {len(problems) - 20} more problems", file=sys.stderr)
    print(json.dumps(report))
    if problems:
        print(f"check FAILED: {len(problems) - extra} of the {len(expected)} expected images "
              f"missing or wrong, {extra} extra file(s) (were they written with the same "
              "options?)", file=sys.stderr)
        return 1
    print(f"check passed: {len(expected)} images " +
          ("equal their records exactly" if a.format == "png" else
           "decode exactly as PIL's encoding of their records"))
    return 0


def main(argv):
    a = parse_args(argv)
    try:
        return run(a)
    except Failure as e:
        print(f"make_image_folders.py: {e}", file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        print("make_image_folders.py: interrupted; nothing was left in place", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
