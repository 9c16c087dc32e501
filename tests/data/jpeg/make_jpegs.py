#!/usr/bin/python3
"""Writes the JPEG fixtures of tests/test_image.cpp (JpegTest) with PIL, and
the pixels TensorFlow's decode_image gives for them, from libjpeg-turbo's own
djpeg with TF's settings (-dct fast, fancy upsampling): NAME.jpg and
NAME.ppm / NAME.pgm (NAME.gray.pgm: the grayscale decoding of a colour one).
Run from this folder: python3 make_jpegs.py /path/to/djpeg
(Debian: libjpeg-turbo-progs)."""
import subprocess
import sys

from PIL import Image

djpeg = sys.argv[1] if len(sys.argv) > 1 else "djpeg"


def pattern(w, h, mode):
    img = Image.new(mode, (w, h))
    for y in range(h):
        for x in range(w):
            if mode == "L":
                img.putpixel((x, y), (x * 23 + y * 11 + (x * y) % 7 * 9) % 256)
            else:
                img.putpixel((x, y), ((x * 19 + y * 3) % 256, (y * 29 + 40) % 256,
                                      (x * y * 5 + 90) % 256))
    return img


def decode(name, *args, out):
    with open(out, "wb") as f:
        subprocess.run([djpeg, "-dct", "fast", *args, "-pnm", name], stdout=f, check=True)


# Odd sizes (partial MCUs), 4:2:0 chroma (fancy upsampling matters).
pattern(21, 14, "RGB").save("rgb420.jpg", quality=80, subsampling=2)
decode("rgb420.jpg", out="rgb420.ppm")
decode("rgb420.jpg", "-grayscale", out="rgb420.gray.pgm")
# Progressive, 4:4:4.
pattern(13, 9, "RGB").save("rgb444_progressive.jpg", quality=90, subsampling=0,
                           progressive=True)
decode("rgb444_progressive.jpg", out="rgb444_progressive.ppm")
# One component.
pattern(10, 7, "L").save("gray.jpg", quality=85)
decode("gray.jpg", out="gray.pgm")
# CMYK (PIL writes Adobe's APP14 marker and inverted inks): flat 8x8 blocks.
cmyk = Image.new("CMYK", (16, 8))
for x in range(16):
    for y in range(8):
        cmyk.putpixel((x, y), (30, 200, 90, 60) if x < 8 else (220, 10, 140, 20))
cmyk.save("cmyk.jpg", quality=100)
