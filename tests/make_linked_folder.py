#!/usr/bin/env python3
"""Makes a large folder dataset quickly for the folder reader's scale tests
(tests/folder_scale_test.sh, tests/decode_interrupt_test.sh,
tests/memory_limit_test.sh): a few distinct gray PNG files per class,
written once, and hard links to them under many names, so that 100,000
files take seconds and almost no disk. Python's standard library only
(zlib), no PIL.

Each class's images are SIDE x SIDE and learnable: class c is dark with a
bright vertical bar whose position depends on c; the distinct files of a
class differ in the bar's brightness. With --noise the pixels around the bar
are random bytes instead of black (large files that take long to decode:
what an interrupted decode needs).

  OUT/class_0/000000.png ... OUT/class_<C-1>/<N/C - 1>.png
  OUT/class_0/broken_000.png ...  (--broken: files that are not images)

Usage: make_linked_folder.py OUT --files N [--classes C] [--distinct K]
       [--side S] [--noise] [--broken B]
Prints one line: the number of files and distinct files written.
"""

import argparse
import os
import struct
import sys
import zlib


def png(side, rows):
    """An 8-bit gray PNG of `rows` (bytes objects of `side` bytes each)."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    raw = b"".join(b"\0" + row for row in rows)  # filter 0 (none) on every row
    return (b"\x89PNG\r\n\x1a\n" +
            chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b""))


def image(side, label, classes, variant, noise):
    left = side * (2 * label + 1) // (2 * classes + 1)
    width = max(1, side // (2 * classes + 1))
    level = 160 + (variant * 37) % 96
    rows = []
    for _ in range(side):
        row = bytearray(os.urandom(side)) if noise else bytearray(side)
        if noise:
            row = bytearray(b // 4 for b in row)  # dim noise: the bar stays the signal
        row[left:left + width] = bytes([level]) * width
        rows.append(bytes(row))
    return png(side, rows)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out")
    p.add_argument("--files", type=int, required=True, help="image files in all")
    p.add_argument("--classes", type=int, default=2)
    p.add_argument("--distinct", type=int, default=3, help="distinct files per class")
    p.add_argument("--side", type=int, default=8)
    p.add_argument("--noise", action="store_true")
    p.add_argument("--broken", type=int, default=0, help="files that are not images, in class 0")
    a = p.parse_args(argv)
    if a.classes < 2 or a.files < a.classes or a.distinct < 1 or not 1 <= a.side <= 4096:
        p.error("needs --classes >= 2, --files >= --classes, --distinct >= 1, --side 1..4096")
    if os.path.exists(a.out):
        sys.exit(f"make_linked_folder.py: {a.out} exists; give a new folder")
    per_class = a.files // a.classes
    distinct = 0
    for c in range(a.classes):
        folder = os.path.join(a.out, f"class_{c}")
        os.makedirs(folder)
        sources = []
        for v in range(min(a.distinct, per_class)):
            path = os.path.join(folder, f"{v:06d}.png")
            with open(path, "wb") as f:
                f.write(image(a.side, c, a.classes, v, a.noise))
            sources.append(path)
            distinct += 1
        for i in range(len(sources), per_class):
            os.link(sources[i % len(sources)], os.path.join(folder, f"{i:06d}.png"))
    for b in range(a.broken):
        with open(os.path.join(a.out, "class_0", f"broken_{b:03d}.png"), "wb") as f:
            f.write(b"not an image " + str(b).encode())
    print(f"{per_class * a.classes + a.broken} files ({distinct} distinct, "
          f"{a.broken} broken) in {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
