"""The ``cnnjpeg`` command line: encode, decode, info, models, demo, restore, convert, batch, bench, train."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from .errors import CjpgError
from .eval.demo import DEFAULT_QUALITY as DEMO_QUALITY
from .format.image_files import png_holds, read_image, write_image, write_restored


def _images_for_demo(files: list[str]) -> list[tuple[str, np.ndarray]]:
    if files:
        stems = [Path(f).stem for f in files]
        if len(set(stems)) < len(stems):
            raise CjpgError(f"the demo names its files after the images, and these share a name: {', '.join(files)}")
        return [(stem, read_image(f)) for stem, f in zip(stems, files)]
    from skimage import data

    return [(name, getattr(data, name)()) for name in ("astronaut", "chelsea", "coffee", "camera")]


def _many(args, op: str, suffix: str | None = None) -> int:
    """Several inputs: the batch engine (all cores, or the GPU); outputs that exist are kept unless ``--overwrite``."""
    from .scale.batch import run

    summary = run(args.inputs, args.out_dir, op=op, suffix=suffix, quality=getattr(args, "quality", 75),
                  model=args.model, subsampling=getattr(args, "subsampling", None), workers=args.workers,
                  progress=True, overwrite=args.overwrite)
    for rec in summary["failed"]:
        print(f"cnnjpeg: failed: {rec['input']}: {rec['error']}", file=sys.stderr)
    if summary["skipped"]:
        print(f"cnnjpeg: note: {summary['skipped']} output(s) exist and were kept; --overwrite replaces them",
              file=sys.stderr)
    print(json.dumps(summary))
    return 1 if summary["failed"] else 0


def _single_output(args, suffix: str) -> Path:
    if len(args.inputs) > 1 and args.output:
        raise CjpgError("--output takes one input; use --out-dir for several")
    if args.output and (args.output.endswith(("/", os.sep)) or Path(args.output).is_dir()):
        raise CjpgError(f"--output names a file, not the folder {args.output}; use --out-dir for a folder")
    src = Path(args.inputs[0])
    if args.out_dir and not args.output:  # made as the batch engine makes it
        Path(args.out_dir).mkdir(parents=True, exist_ok=True)
    return Path(args.output) if args.output else (Path(args.out_dir) if args.out_dir else src.parent) / (src.stem + suffix)


def _keep_existing(args, dest: Path) -> None:
    """Refuse to replace a file the user did not name (such as the original image beside a ``.cjpg``)."""
    if not args.output and not args.overwrite and os.path.lexists(dest):
        raise CjpgError(f"{dest} exists; pass --overwrite to replace it, or name the output with -o")


def _quality_note(note: str) -> None:
    if note:
        print(f"cnnjpeg: note: {note}", file=sys.stderr)


def _cmd_encode(args) -> int:
    from .codec import imwrite
    from .nn.models import default_model, quality_note

    dest = _single_output(args, ".cjpg")
    if args.quality is not None and not 1 <= args.quality <= 100:
        raise CjpgError(f"quality must be an integer from 1 to 100, got {args.quality}")
    if len(args.inputs) > 1 or Path(args.inputs[0]).is_dir():
        _quality_note(quality_note(args.model or default_model(), args.quality))
        return _many(args, "encode")
    _keep_existing(args, dest)
    image = read_image(args.inputs[0])  # data of more than 8 bits goes to the 12-bit default model
    _quality_note(quality_note(args.model or default_model(8 if image.dtype == np.uint8 else 12), args.quality))
    imwrite(dest, image, quality=args.quality, model=args.model, subsampling=args.subsampling)
    print(dest)
    return 0


def _cmd_decode(args) -> int:
    from .codec import imread, info

    _single_output(args, ".png")  # its checks of -o against the inputs
    if len(args.inputs) > 1 or Path(args.inputs[0]).is_dir():
        return _many(args, "decode", "." + (args.format or "png"))
    head = info(args.inputs[0])  # the header alone: the output's name is checked before any decoding
    dest = _single_output(args, "." + (args.format or ("png" if png_holds(head["shape"], head["dtype"]) else "tif")))
    _keep_existing(args, dest)
    write_image(dest, imread(args.inputs[0], model=args.model))
    print(dest)
    return 0


def _cmd_info(args) -> int:
    from .codec import info

    if len(args.inputs) == 1:
        print(json.dumps(info(args.inputs[0]), indent=2, default=str))
        return 0
    out, failed = {}, 0
    for p in args.inputs:  # one bad file does not hide the others
        try:
            out[str(p)] = info(p)
        except CjpgError as exc:
            out[str(p)] = {"error": str(exc)}
            print(f"cnnjpeg: error: {p}: {exc}", file=sys.stderr)
            failed += 1
    print(json.dumps(out, indent=2, default=str))
    return 1 if failed else 0


def _cmd_restore(args) -> int:
    from .codec import restore
    from .format.container import is_cjpg

    dest = _single_output(args, "." + args.format)
    if len(args.inputs) > 1 or Path(args.inputs[0]).is_dir():
        return _many(args, "restore", "." + args.format)
    data = Path(args.inputs[0]).read_bytes()
    if is_cjpg(data):  # before any word on the output: this input is not for restore
        raise CjpgError(f"{args.inputs[0]} is a .cjpg file, not a plain JPEG: open it with cnnjpeg decode")
    _keep_existing(args, dest)
    write_restored(dest, restore(data, args.model), args.inputs[0])
    print(dest)
    return 0


def _cmd_demo(args) -> int:
    from tqdm import tqdm

    from .codec import info
    from .eval.demo import demo_rows, format_table
    from .format.container import write_atomic

    images = _images_for_demo(args.files)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, image in tqdm(images, desc="demo"):
        for row, data in demo_rows(name, image, quality=args.quality, models=args.models):
            bits = "-12bit" if info(data)["bits"] == 12 else ""  # 16-bit data: plain JPEG at either precision
            write_atomic(out / f"{name}.{row['format']}{bits}.q{row['quality']}.cjpg", data)
            rows.append(row)
    print(format_table(rows))
    print(f"\n.cjpg files written to {out}/")
    return 0


def _cmd_train(args) -> int:
    from .training import TrainConfig, Trainer

    if args.export and (not Path(args.export).parent.is_dir() or Path(args.export).is_dir()):
        raise CjpgError(f"--export {args.export}: name a file in a folder that exists (checked before training)")
    try:
        cfg = TrainConfig.load(args.config)
        for key in ("data", "out", "steps", "device"):
            if getattr(args, key) is not None:
                setattr(cfg, key, getattr(args, key))
        trainer = Trainer(cfg)
    except ValueError as exc:  # settings that cannot run here (unknown key, no CUDA, too few images)
        raise CjpgError(str(exc)) from None
    trainer.run()
    if args.export:
        trainer.export(args.export)
        print(args.export)
    return 0


def _cmd_models(args) -> int:
    from .nn.models import available_models, default_model, model_summary

    for model in available_models():
        mark = " (default)" if model == default_model() else " (default for 12-bit payloads)" \
            if model == default_model(12) else ""
        print(f"{model}{mark}\n  {model_summary(model)}")
    return 0


def _cmd_convert(args) -> int:
    from .scale.ome_zarr import convert

    result = convert(args.input, args.to, quality=args.quality, model=args.model, chunk=args.chunk,
                     overwrite=args.overwrite, progress=True)
    print(json.dumps(result))
    return 0


def _cmd_batch(args) -> int:
    from .scale.batch import run

    summary = run(args.inputs, args.out, quality=args.quality, model=args.model, subsampling=args.subsampling,
                  workers=args.workers, scheduler=args.scheduler, progress=True, overwrite=args.overwrite)
    for rec in summary["failed"]:
        print(f"cnnjpeg: failed: {rec['input']}: {rec['error']}", file=sys.stderr)
    print(json.dumps(summary))
    return 1 if summary["failed"] else 0


def _cmd_bench(args) -> int:
    from .eval import bench

    return bench.run(args)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``cnnjpeg``."""
    from .nn.models import available_models

    p = argparse.ArgumentParser(prog="cnnjpeg", description="JPEG made better with convolutional networks.")
    sub = p.add_subparsers(dest="command", required=True)
    models = available_models()

    many = ("several inputs (or a folder) run on all cores, or the GPU, through the engine of "
            "'cnnjpeg batch'; an output that exists is kept (an error for one input) unless --overwrite, "
            "or, for one input, -o names it")
    replace = "replace outputs that exist (an output named with -o always is)"
    e = sub.add_parser("encode", help="compress images (PNG, TIFF, JPEG, ...) to .cjpg", description=many)
    e.add_argument("inputs", nargs="+", help="image files or folders (their files, not subfolders)")
    e.add_argument("-o", "--output", help="output file (one input)")
    e.add_argument("--out-dir", help="folder for the .cjpg files (default: beside each input)")
    e.add_argument("-q", "--quality", type=int, default=75)
    e.add_argument("-m", "--model", default=None, help=f"one of {', '.join(models)} (default: best shipped)")
    subsampling = dict(default=None, choices=["4:2:0", "4:2:2", "4:4:4"],
                       help="chroma subsampling of RGB images (default: 4:2:0, but 4:4:4 from quality 95, 12-bit "
                            "payloads from 90; plain JPEG and the compact model stay 4:2:0)")
    e.add_argument("--subsampling", **subsampling)
    e.add_argument("--workers", type=int, default=None, help="worker processes for several inputs (default: CPUs)")
    e.add_argument("--overwrite", action="store_true", help=replace)
    e.set_defaults(func=_cmd_encode)

    d = sub.add_parser("decode", help="decode .cjpg files to PNG or TIFF", description=many)
    d.add_argument("inputs", nargs="+", help=".cjpg files or folders (their files, not subfolders)")
    d.add_argument("-o", "--output", help="output .png or .tif (one input)")
    d.add_argument("--out-dir", help="folder for the outputs (default: beside each input)")
    d.add_argument("--format", choices=("png", "tif"), default=None,
                   help="with --out-dir or no -o (default: png, or tif for what PNG cannot hold: stacks, other "
                        "dtypes; png for folders)")
    d.add_argument("-m", "--model", default=None, help="override the file's model, e.g. 'jpeg' for the plain payload")
    d.add_argument("--workers", type=int, default=None, help="worker processes for several inputs (default: CPUs)")
    d.add_argument("--overwrite", action="store_true", help=replace)
    d.set_defaults(func=_cmd_decode)

    i = sub.add_parser("info", help="print what a .cjpg holds")
    i.add_argument("inputs", nargs="+")
    i.set_defaults(func=_cmd_info)

    r = sub.add_parser("restore", help="remove artefacts from ordinary JPEG files with a decoder-only model",
                       description=many)
    r.add_argument("inputs", nargs="+", help=".jpg files or folders (their files, not subfolders)")
    r.add_argument("-o", "--output", help="output .png or .tif (one input)")
    r.add_argument("--out-dir", help="folder for the outputs (default: beside each input)")
    r.add_argument("--format", choices=("png", "tif"), default="png", help="with --out-dir or no -o")
    r.add_argument("-m", "--model", default=None)
    r.add_argument("--workers", type=int, default=None, help="worker processes for several inputs (default: CPUs)")
    r.add_argument("--overwrite", action="store_true", help=replace)
    r.set_defaults(func=_cmd_restore)

    ls = sub.add_parser("models", help="list the models: what each is, what a stock viewer shows, its qualities")
    ls.set_defaults(func=_cmd_models)

    m = sub.add_parser("demo", help="compress sample images with plain JPEG and each model; print a table")
    m.add_argument("files", nargs="*", help="images to use (default: scikit-image samples)")
    m.add_argument("--out", default="demo-out")
    m.add_argument("-q", "--quality", type=int, default=DEMO_QUALITY, help="quality of the model files")
    m.add_argument("--models", nargs="+", default=None, help="models to show (default: all)")
    m.set_defaults(func=_cmd_demo)

    b = sub.add_parser("bench", help="rate-distortion benchmark against JPEG, WebP, AVIF and JPEG XL")
    from .eval import bench

    bench.add_arguments(b)
    b.set_defaults(func=_cmd_bench)

    c = sub.add_parser("convert", help="convert an image, TIFF stack or .cjpg to OME-Zarr with cnnjpeg chunks")
    c.add_argument("input")
    c.add_argument("--to", required=True, help="output folder, e.g. image.ome.zarr")
    c.add_argument("-q", "--quality", type=int, default=75)
    c.add_argument("-m", "--model", default=None, help=f"one of {', '.join(models)} (default: best shipped)")
    c.add_argument("--chunk", type=int, default=512, help="chunk size along Y and X")
    c.add_argument("--overwrite", action="store_true", help="replace an existing output once the new one is complete")
    c.set_defaults(func=_cmd_convert)

    bt = sub.add_parser("batch", help="compress many files and folders to DIR/<name>.cjpg on a dask cluster")
    bt.add_argument("inputs", nargs="+", help="image files and folders (their files, not subfolders)")
    bt.add_argument("--out", required=True, help="output folder")
    bt.add_argument("--workers", type=int, default=None, help="worker processes of the local cluster (default: CPUs)")
    bt.add_argument("--scheduler", default=None, help="address of a running dask scheduler, e.g. tcp://host:8786")
    bt.add_argument("-q", "--quality", type=int, default=75)
    bt.add_argument("-m", "--model", default=None, help=f"one of {', '.join(models)} (default: best shipped)")
    bt.add_argument("--subsampling", **subsampling)
    bt.add_argument("--overwrite", action="store_true",
                    help="redo outputs that exist (default: keep them, so a rerun resumes)")
    bt.set_defaults(func=_cmd_batch)

    t = sub.add_parser("train", help="train a network from a JSON config (see configs/)")
    t.add_argument("--config", required=True)
    t.add_argument("--data", default=None)
    t.add_argument("--out", default=None)
    t.add_argument("--steps", type=int, default=None)
    t.add_argument("--device", choices=("cpu", "cuda", "auto"), default=None, help="override the config's device")
    t.add_argument("--export", default=None, help="write the final weights to this .safetensors file")
    t.set_defaults(func=_cmd_train)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``cnnjpeg``; errors print one line and exit non-zero."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CjpgError as exc:
        print(f"cnnjpeg: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        what = f"{exc.strerror}: {exc.filename}" if exc.strerror and exc.filename else exc
        print(f"cnnjpeg: error: {what}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cnnjpeg: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
