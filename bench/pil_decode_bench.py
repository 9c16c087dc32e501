#!/usr/bin/env python3
"""Python's usual way to decode a folder of images, timed: what torchvision's
ImageFolder does with its default loader and a Resize on PIL images, the
benchmark peer of mnist-train's folder reader (docs/data.md).

For each file (.png, .jpg, .jpeg, any case, under DIR, in sorted order):
open it, PIL Image.open, convert("RGB") (torchvision's pil_loader) or
convert("L") for --color grayscale, resize to --size with PIL's bilinear
filter (torchvision's Resize on a PIL image calls Image.resize with
BILINEAR by default; PIL antialiases when it shrinks, whatever Resize's
antialias argument says), and copy the pixels into one shared uint8 array
[N, H, W, C]. --workers processes share the files in contiguous slices.

Prints one line of JSON: images, seconds (the fastest of --repeat passes,
the pool already started, the file list already made), images_per_second,
workers, cpu_seconds (the workers' CPU time in that pass: on a busy machine
images_per_cpu_second is the steadier figure), the PIL and libjpeg versions,
and a checksum of the array (the sum of its bytes, the same whatever the
worker count).

Usage: bench/pil_decode_bench.py DIR [--workers N] [--size H,W]
       [--color rgb|grayscale] [--repeat R]
"""

import argparse
import json
import multiprocessing
import os
import sys
import time
from multiprocessing import shared_memory

try:
    import numpy as np
    import PIL
    from PIL import Image, features
except ImportError as e:
    sys.exit(f"pil_decode_bench.py: {e} in {sys.executable}; it needs PIL and numpy "
             "(Debian: apt-get install python3-pil python3-numpy, for /usr/bin/python3)")

EXTENSIONS = (".png", ".jpg", ".jpeg")

# Set in each worker by init(): the shared output array and the job.
_out = None
_job = None


def list_images(root):
    paths = []
    for d, dirs, names in os.walk(root):
        dirs.sort()
        paths += [os.path.join(d, n) for n in sorted(names) if n.lower().endswith(EXTENSIONS)]
    return paths


def load(path, mode, size):
    """As torchvision's pil_loader + Resize: uint8 [H, W] or [H, W, 3]."""
    with open(path, "rb") as f:
        image = Image.open(f)
        image = image.convert(mode)
    if size is not None:
        image = image.resize((size[1], size[0]), Image.BILINEAR)
    return np.asarray(image)


def init(shm_name, shape, job):
    global _out, _job
    shm = shared_memory.SharedMemory(name=shm_name)
    _out = (shm, np.ndarray(shape, dtype=np.uint8, buffer=shm.buf))
    _job = job


def decode_slice(bounds):
    start, end = bounds
    paths, mode, size = _job
    out = _out[1]
    cpu = time.process_time()
    for i in range(start, end):
        try:
            pixels = load(paths[i], mode, size)
        except Exception as e:  # PIL raises many kinds on a corrupt file
            raise ValueError(f"{paths[i]}: cannot be decoded ({type(e).__name__}: {e})")
        if pixels.shape[:2] != out.shape[1:3]:
            raise ValueError(f"{paths[i]}: {pixels.shape[1]}x{pixels.shape[0]}, but the first "
                             f"image is {out.shape[2]}x{out.shape[1]}; give --size H,W")
        out[i] = pixels.reshape(out.shape[1:])
    return end - start, time.process_time() - cpu


def main(argv):
    p = argparse.ArgumentParser(description="Decode an image folder as torchvision's "
                                "ImageFolder does (PIL), timed; one line of JSON.")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="processes (default: os.cpu_count())")
    p.add_argument("--size", help="H,W: resize every image to it (PIL bilinear)")
    p.add_argument("--color", choices=["rgb", "grayscale"], default="rgb",
                   help="convert('RGB') (default) or convert('L')")
    p.add_argument("--repeat", type=int, default=3,
                   help="passes over the folder; the fastest is reported (default 3)")
    a = p.parse_args(argv)
    size = None
    if a.size is not None:
        try:
            size = tuple(int(v) for v in a.size.split(","))
            if len(size) != 2 or min(size) < 1 or max(size) > 4096:
                raise ValueError
        except ValueError:
            p.error(f"--size: expected H,W of 1..4096 each, got '{a.size}'")
    if not 1 <= a.workers <= 1024:
        p.error(f"--workers: must be 1..1024, got {a.workers}")
    if not 1 <= a.repeat <= 100:
        p.error(f"--repeat: must be 1..100, got {a.repeat}")
    if not os.path.isdir(a.dir):
        sys.exit(f"pil_decode_bench.py: {a.dir}: no such folder")
    paths = list_images(a.dir)
    if not paths:
        sys.exit(f"pil_decode_bench.py: {a.dir}: no .png, .jpg or .jpeg files under it")
    mode = "RGB" if a.color == "rgb" else "L"
    try:
        first = load(paths[0], mode, size)
    except Exception as e:
        sys.exit(f"pil_decode_bench.py: {paths[0]}: cannot be decoded ({e})")
    shape = (len(paths), first.shape[0], first.shape[1], 3 if mode == "RGB" else 1)
    shm = shared_memory.SharedMemory(create=True, size=int(np.prod(shape)))
    try:
        out = np.ndarray(shape, dtype=np.uint8, buffer=shm.buf)
        step = -(-len(paths) // a.workers)
        slices = [(s, min(s + step, len(paths))) for s in range(0, len(paths), step)]
        times, cpus = [], []
        with multiprocessing.Pool(a.workers, initializer=init,
                                  initargs=(shm.name, shape, (paths, mode, size))) as pool:
            pool.map(int, range(a.workers))  # every worker started and initialised
            for _ in range(a.repeat):
                out[:] = 0
                started = time.perf_counter()
                counts = pool.map(decode_slice, slices, chunksize=1)
                times.append(time.perf_counter() - started)
                done = sum(n for n, _ in counts)
                cpus.append(sum(c for _, c in counts))
        checksum = int(out.sum(dtype=np.uint64))
    except ValueError as e:
        sys.exit(f"pil_decode_bench.py: {e}")
    finally:
        shm.close()
        shm.unlink()
    best = min(times)
    cpu = cpus[times.index(best)]
    print(json.dumps({
        "images": done, "seconds": round(best, 4), "images_per_second": round(done / best, 1),
        "workers": a.workers, "cpu_seconds": round(cpu, 4),
        "images_per_cpu_second": round(done / cpu, 1), "shape": list(shape), "color": a.color,
        "all_seconds": [round(t, 4) for t in times], "checksum": checksum,
        "pil": PIL.__version__, "libjpeg": features.version("jpg"),
        "libjpeg_turbo": features.version("libjpeg_turbo"),
        "zlib": features.version("zlib")}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
