"""Arithmetic against Huffman coding of 12-bit payloads: bytes and decode speed, no network.

Usage: python scripts/arithmetic_study.py [FOLDER] [--qualities 20 45 60 75 90]

Each grey plane of a folder of 12/16-bit or float TIFFs (as ``cnnjpeg bench`` takes them;
default ``../shared/data/micro``) is mapped from its min/max and coded as the codec codes it
at each quality (``codec.encode_levels12``: levels, frequency weighting), then recoded
losslessly by libjpeg-turbo 3 (``turbojpeg.transform``) with arithmetic coding, sequential
(SOF9) and progressive (SOF10). Prints, per quality, the mean size of each against the Huffman
stream, the share of planes whose payload :func:`jpeg.smallest_coding12` recodes (where
arithmetic coding is smaller), the decode speed of each coding through imagecodecs
(pixels of all planes over the time to decode them all, best of three), and the speed of the
Huffman encode alone and of :func:`jpeg.smallest_coding12` (the recoding and its check), which
the codec adds to it.
"""

import argparse
import time

import imagecodecs
import numpy as np
import turbojpeg

from napari_cnnjpeg.codec import _to_levels, encode_levels12, twelve_bit_setting, twelve_bit_weighting
from napari_cnnjpeg.eval.bench_scientific import load_planes
from napari_cnnjpeg.format.jpeg import smallest_coding12

CODINGS = {"huffman": None, "arithmetic": {"arithmetic": True},
           "arithmetic-progressive": {"arithmetic": True, "progressive": True}}


def speed(work, items: list, pixels: int) -> float:
    """MP/s of ``work`` applied to every item, best of three."""
    best = np.inf
    for _ in range(3):
        t = time.perf_counter()
        for item in items:
            work(item)
        best = min(best, time.perf_counter() - t)
    return pixels / 1e6 / best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder", nargs="?", default="../shared/data/micro")
    p.add_argument("--qualities", type=int, nargs="+", default=[20, 45, 60, 75, 90])
    args = p.parse_args()
    planes = [(n, im) for n, im in load_planes(args.folder) if im.ndim == 2]
    pixels = sum(im.size for _, im in planes)
    print(f"{len(planes)} grey planes of {args.folder}, {pixels / 1e6:.1f} MP\n")
    print("| quality | arithmetic / Huffman bytes | progressive arithmetic / Huffman | recoded by the codec "
          "| decode MP/s Huffman | arithmetic | progressive arithmetic | encode MP/s | recode MP/s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for q in args.qualities:
        levels = twelve_bit_setting(q)[1]
        streams = {k: [] for k in CODINGS}
        recoded = 0
        mapped = [_to_levels(im, float(im.min()), float(im.max()), levels, np.uint16) for _, im in planes]
        weighting = twelve_bit_weighting(q, rgb=False)
        for plane in mapped:
            data = encode_levels12(plane, q, "4:2:0", weighting)
            for k, options in CODINGS.items():
                streams[k].append(data if options is None else turbojpeg.transform(data, **options))
            recoded += smallest_coding12(data) is not data
        ratio = {k: np.mean([len(a) / len(b) for a, b in zip(v, streams["huffman"])]) for k, v in streams.items()}
        dec = {k: speed(imagecodecs.jpeg8_decode, v, pixels) for k, v in streams.items()}
        enc = speed(lambda plane: encode_levels12(plane, q, "4:2:0", weighting), mapped, pixels)
        recode = speed(smallest_coding12, streams["huffman"], pixels)
        print(f"| {q} | {ratio['arithmetic']:.3f} | {ratio['arithmetic-progressive']:.3f} | {recoded} of {len(planes)} "
              f"| {dec['huffman']:.0f} | {dec['arithmetic']:.0f} | {dec['arithmetic-progressive']:.0f} | {enc:.0f} "
              f"| {recode:.0f} |", flush=True)


if __name__ == "__main__":
    main()
