#!/usr/bin/env python3
"""Checks that the system's libjpeg-turbo (TurboJPEG, what stagebeam decodes JPEG with) gives the same
pixels as the installed Pillow (`Image.open(f).convert("RGB")`, with the libjpeg-turbo its wheel bundles)
on a sweep of JPEGs Pillow writes: sizes, qualities, subsamplings, progressive and optimized files, grey,
CMYK, and YCCK (written by TurboJPEG itself); with jpegtran (Debian's libjpeg-turbo-progs) on the path,
also arithmetic-coded and restart-marker copies. Prints each differing case and a summary.

    .venv/bin/python scripts/check_jpeg_decoders.py
"""
import ctypes
import ctypes.util
import io
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import PIL
from PIL import Image, features

sys.path.insert(0, str(Path(__file__).resolve().parent / "fixtures"))
from make_vision_fixtures import photo, to8, turbojpeg_ycck  # noqa: E402

TJPF_RGB, TJPF_CMYK = 0, 11
library = ctypes.CDLL(ctypes.util.find_library("turbojpeg"))
library.tjInitDecompress.restype = ctypes.c_void_p
library.tjGetErrorStr2.restype = ctypes.c_char_p


def turbojpeg_rgb(data):
    """RGB as stagebeam's JPEGDecoder computes it (CMYK/YCCK: Pillow's "CMYK;I" and cmyk2rgb)."""
    handle = ctypes.c_void_p(library.tjInitDecompress())
    width, height, subsampling, colorspace = (ctypes.c_int() for _ in range(4))
    assert library.tjDecompressHeader3(handle, data, ctypes.c_ulong(len(data)), ctypes.byref(width),
                                       ctypes.byref(height), ctypes.byref(subsampling), ctypes.byref(colorspace)) == 0
    cmyk = colorspace.value in (3, 4)
    pixels = np.zeros((height.value, width.value, 4 if cmyk else 3), np.uint8)
    status = library.tjDecompress2(handle, data, ctypes.c_ulong(len(data)), pixels.ctypes.data_as(ctypes.c_void_p),
                                   width, 0, height, TJPF_CMYK if cmyk else TJPF_RGB, 0)
    library.tjDestroy(handle)
    assert status == 0, "decoding failed"
    if not cmyk:
        return pixels
    not_black = pixels[..., 3:].astype(np.int64)
    product = (255 - pixels[..., :3].astype(np.int64)) * not_black + 128
    return (not_black - (((product >> 8) + product) >> 8)).astype(np.uint8)


def compare(data):
    """None when both decoders give the same pixels (or both refuse the file), else what differs."""
    try:
        pillow = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    except OSError as error:
        pillow = f"Pillow: {error}"
    try:
        turbo = turbojpeg_rgb(data)
    except AssertionError as error:
        turbo = f"TurboJPEG: {error}"
    if isinstance(pillow, str) or isinstance(turbo, str):
        return None if isinstance(pillow, str) and isinstance(turbo, str) else \
            (pillow if isinstance(pillow, str) else "Pillow decodes") + "; " + \
            (turbo if isinstance(turbo, str) else "TurboJPEG decodes")
    return None if np.array_equal(pillow, turbo) else f"{int((pillow != turbo).sum())} values differ"


# jpegtran's lossless recodings of a file: (label, options).
TRANSCODINGS = [(", arithmetic-coded", ["-arithmetic"]), (", restart markers every row", ["-restart", "1"]),
                (", arithmetic progressive", ["-arithmetic", "-progressive"])]


def main():
    print(f"Pillow {PIL.__version__} (libjpeg-turbo {features.version_feature('libjpeg_turbo')}) "
          f"vs {ctypes.util.find_library('turbojpeg')}")
    cases = differing = 0
    for width, height in [(32, 48), (33, 47), (250, 190), (7, 5), (1, 1)]:
        image = Image.fromarray(to8(photo(width, height, width * 7 + height)))
        variants = [(f"q{q} subsampling {s} progressive {p} optimize {o}", image, dict(quality=q, subsampling=s,
                     progressive=p, optimize=o)) for q in (10, 50, 75, 95, 100) for s in (0, 1, 2)
                    for p in (False, True) for o in (False, True)]
        variants += [(f"grey q{q} progressive {p}", image.convert("L"), dict(quality=q, progressive=p))
                     for q in (10, 50, 75, 95, 100) for p in (False, True)]
        variants += [(f"CMYK q{q}", image.convert("CMYK"), dict(quality=q)) for q in (10, 50, 75, 95, 100)]
        for label, source, options in variants:
            buffer = io.BytesIO()
            source.save(buffer, "JPEG", **options)
            data = buffer.getvalue()
            for recoding, options in [("", None)] + TRANSCODINGS * bool(shutil.which("jpegtran")):
                recoded = data
                if options:
                    recoded = subprocess.run(["jpegtran", *options], input=data, capture_output=True, check=True).stdout
                cases += 1
                outcome = compare(recoded)
                if outcome:
                    differing += 1
                    print(f"differs: {width}×{height} {label}{recoding}: {outcome}")
        for quality in (50, 95):
            cases += 1
            outcome = compare(turbojpeg_ycck(np.asarray(image.convert("CMYK")), quality))
            if outcome:
                differing += 1
                print(f"differs: {width}×{height} YCCK q{quality}: {outcome}")
    print(f"{cases} JPEGs, {differing} decode differently")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
