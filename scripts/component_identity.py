"""Where restoring the components of RGB-coded, CMYK and YCCK JPEGs one by one stops paying.

Usage: python scripts/component_identity.py [QUALITY ...] [--model MODEL_ID] [--threads 1] [--write]

``restore`` treats JPEGs whose components are not YCbCr (:func:`format.jpeg.colour_coding`) component by
component: R, G, B or C, M, Y, K coded "as is" are each restored as a grey plane, and YCCK's K too. This codes
384 px crops of five scikit-image photos (coffee, astronaut, chelsea, rocket, immunohistochemistry) as such
files (RGB-coded 4:4:4 by libjpeg-turbo, CMYK by Pillow, YCCK 4:4:4 by libjpeg-turbo; the CMYK separation of
tests/test_user_paths_restore.py) at each quality and prints, per coding, the mean luma step of the file's
tables and the PSNR change of ``restore`` over the plain decode, per photo and mean (RGB, against the
separation as Pillow shows it), with the network run on every component. The largest mean step at which
a coding's mean change is below zero is the model's ``identity_step["component"]``: components whose
tables are that fine or finer come back as decoded. ``--write`` records it in ``weights/zoo.json``.
"""

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

import napari_cnnjpeg as cj
from napari_cnnjpeg.eval.metrics import psnr
from napari_cnnjpeg.format.container import write_atomic
from napari_cnnjpeg.format.jpeg import quant_tables
from napari_cnnjpeg.nn.models import default_restore_model, load_stages

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from test_user_paths_restore import _cmyk, _shown  # noqa: E402  (the tests' CMYK separation)


def coded(rgb: np.ndarray, coding: str, quality: int) -> tuple[bytes, np.ndarray]:
    """A JPEG of ``rgb`` in ``coding`` and the RGB it should restore to."""
    import turbojpeg as tj

    if coding == "rgb":
        return tj.compress(rgb, quality, tj.SAMP.Y444, tj.CS.RGB, pixelformat=tj.PF.RGB), rgb
    cmyk = _cmyk(rgb)
    if coding == "cmyk":
        buf = io.BytesIO()
        cmyk.save(buf, format="JPEG", quality=quality)
        return buf.getvalue(), np.asarray(cmyk.convert("RGB"))
    # Adobe's CMYK is stored inverted; libjpeg-turbo writes the samples it is given
    jpeg = tj.compress(255 - np.asarray(cmyk), quality, tj.SAMP.Y444, tj.CS.YCCK, pixelformat=tj.PF.CMYK)
    return jpeg, np.asarray(cmyk.convert("RGB"))


def main() -> None:
    from skimage import data

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("qualities", nargs="*", type=int, default=[80, 90, 95, 96, 97, 98, 99, 100])
    p.add_argument("--model", default=None, help="decoder-only model (default: restore's default)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--write", action="store_true")
    args = p.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    model = args.model or default_restore_model(8)
    stages = load_stages(model)  # the instance restore() uses (cached): the network runs on every component
    stages.identity_step = {**(stages.identity_step or {}), "component": -1.0}
    negative = [0.0]
    photos = [getattr(data, n)()[:384, :384] for n in ("coffee", "astronaut", "chelsea", "rocket",
                                                        "immunohistochemistry")]
    print("| coding | quality | mean luma step | change per photo (dB) | mean (dB) |")
    print("|---|---:|---:|---|---:|")
    for coding in ("rgb", "cmyk", "ycck"):
        for q in args.qualities:
            steps, gains = [], []
            for rgb in photos:
                jpeg, ref = coded(np.ascontiguousarray(rgb), coding, q)
                steps.append(quant_tables(jpeg)[0].mean())
                gains.append(psnr(ref, cj.restore(jpeg, model=model)) - psnr(ref, _shown(jpeg)))
            if np.mean(gains) < 0:
                negative.append(float(np.mean(steps)))
            print(f"| {coding} | {q} | {np.mean(steps):.2f} | {' '.join(f'{g:+.2f}' for g in gains)} "
                  f"| {np.mean(gains):+.3f} |", flush=True)
    print(f"{model}: component identity step {max(negative):.4f}")
    if args.write:
        zoo_path = Path(__file__).resolve().parent.parent / "src" / "napari_cnnjpeg" / "weights" / "zoo.json"
        zoo = json.loads(zoo_path.read_text())
        for e in zoo:
            if e["id"] == model:
                e["identity_step"] = {**e.get("identity_step", {}), "component": round(max(negative), 4)}
        write_atomic(zoo_path, (json.dumps(zoo, indent=2) + "\n").encode())


if __name__ == "__main__":
    main()
