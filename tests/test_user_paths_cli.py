"""What a user meets running ``cnnjpeg demo``, ``bench`` and ``train`` on awkward inputs, and the
device settings: each failure is one line naming the problem (a CjpgError), never a traceback."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image
from skimage import data

from napari_cnnjpeg import CjpgError, cli, codec
from napari_cnnjpeg.eval import bench, bench_restore, bench_scientific, demo, metrics
from napari_cnnjpeg.nn import inference, models
from napari_cnnjpeg.training import TrainConfig, Trainer

torch.set_num_threads(1)
CONFIGS = Path(__file__).parent.parent / "configs"


def _png(path: Path, image: np.ndarray) -> Path:
    Image.fromarray(image).save(path)
    return path


def _photos(folder: Path, n: int = 2, side: int = 48) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(("astronaut", "chelsea", "coffee", "rocket")[:n]):
        _png(folder / f"im{i}.png", getattr(data, name)()[:side, :side])
    return folder


def _planes(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    y, x = np.mgrid[:48, :48]
    for i in range(2):
        tifffile.imwrite(folder / f"p{i}.tif", (1000 + 600 * np.sin(x / 6 + i) * np.cos(y / 8)).astype(np.uint16))
    return folder


# -- demo -------------------------------------------------------------------------
def test_ssim_refuses_what_its_window_does_not_fit():
    for shape in ((10, 40), (40, 8)):
        with pytest.raises(CjpgError, match="at least 11x11"):
            metrics.ssim(np.zeros(shape, np.uint8), np.zeros(shape, np.uint8))
    assert metrics.ssim(np.zeros((11, 11), np.uint8), np.zeros((11, 11), np.uint8)) == 1.0


def test_demo_of_a_thin_image_is_one_line_naming_it(tmp_path, capsys):
    wide = _png(tmp_path / "wide.png", np.tile(data.camera()[:8, :300], (1, 10)))
    assert cli.main(["demo", str(wide), "--out", str(tmp_path / "out"), "--models", "jpeg"]) == 2
    assert "image wide is 8x3000 pixels" in capsys.readouterr().err


def test_demo_of_16_bit_data_rates_its_own_range_against_jpeg_of_the_same_precision():
    y, x = np.mgrid[:48, :48]
    plane = (1000 + 300 * np.sin(x / 5) * np.cos(y / 7)).astype(np.uint16)  # 700-1300 of 65535
    rows = demo.demo_rows("cells", plane, models=["joint-s-v8"])
    (jpeg, jpeg_bytes), (model, _) = rows
    assert jpeg["format"] == "jpeg" and model["format"] == "joint-s-v8"
    assert 20 < jpeg["psnr"] < 50 and 20 < model["psnr"] < 50  # over 600 levels, not 65535
    assert jpeg_bytes == codec.encode(plane, quality=jpeg["quality"], model="jpeg", bits=8)  # the model's 8 bits
    assert "micro-s-v6" in {r["format"] for r, _ in demo.demo_rows("cells", plane)}  # 12-bit models offered too


# -- bench ------------------------------------------------------------------------
def _bench(tmp_path: Path, folder: Path, *extra: str) -> int:
    return cli.main(["bench", "--data", str(folder), "--out", str(tmp_path / "report"), "--models", "jpeg",
                     "--references", "--sanity-qualities", "--qualities", "30", "60", *extra])


def test_bench_names_an_unreadable_image(tmp_path, capsys):
    folder = _photos(tmp_path / "photos")
    (folder / "cut.png").write_bytes((folder / "im0.png").read_bytes()[:2000])
    assert _bench(tmp_path, folder) == 2
    assert f"cannot read image {folder / 'cut.png'}" in capsys.readouterr().err


def test_bench_refuses_a_file_as_its_report_folder_before_measuring(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(bench, "benchmark", lambda *a, **k: pytest.fail("measured before checking --out"))
    (tmp_path / "report").write_text("not a folder")
    assert _bench(tmp_path, _photos(tmp_path / "photos")) == 2
    assert "is a file" in capsys.readouterr().err


def test_bench_says_what_it_leaves_out_and_why_deltas_are_missing(tmp_path, capsys):
    folder = _photos(tmp_path / "photos")
    _png(folder / "photo.jpg", data.coffee()[:48, :48])
    assert cli.main(["bench", "--data", str(folder), "--out", str(tmp_path / "report"), "--models", "jpeg",
                     "--references", "webp", "--sanity-qualities", "--qualities", "30"]) == 0
    out = capsys.readouterr()
    assert "left out 1 file(s) of other types: photo.jpg" in out.err
    assert "webp: BD-rate n/a" in out.out and "measure more qualities" in out.out


def test_bench_refuses_images_too_small_for_ssim_by_name(tmp_path):
    with pytest.raises(CjpgError, match=r"thin \(10x40\)"):
        bench.benchmark([("thin", np.zeros((10, 40), np.uint8))], [50], ["jpeg"], references=(), progress=False)


def test_scientific_bench_names_a_corrupt_tiff(tmp_path, capsys):
    folder = _planes(tmp_path / "planes")
    (folder / "p2.tif").write_bytes(b"II*\x00" + b"\xff" * 12)
    assert _bench(tmp_path, folder) == 2
    assert f"cannot read TIFF {folder / 'p2.tif'}" in capsys.readouterr().err


def test_scientific_bench_refuses_rgb_instead_of_cutting_it_into_strips(tmp_path):
    folder = tmp_path / "rgb"
    folder.mkdir()
    tifffile.imwrite(folder / "c.tif", np.random.default_rng(0).integers(0, 4000, (48, 48, 3)).astype(np.uint16))
    with pytest.raises(CjpgError, match="grey planes, got 3 samples"):
        bench_scientific.load_planes(folder)


def test_scientific_bench_takes_the_qualities_and_refuses_8_bit_references(tmp_path, capsys):
    folder = _planes(tmp_path / "planes")
    assert _bench(tmp_path, folder, "--references", "webp") == 2
    assert "unknown reference codecs ['webp'] for folders of 12/16-bit TIFFs" in capsys.readouterr().err
    assert _bench(tmp_path, folder, "--qualities", "0") == 2
    assert "from 1 to 100" in capsys.readouterr().err
    assert _bench(tmp_path, folder) == 0
    result = json.loads((tmp_path / "report" / "report.json").read_text())
    assert result["qualities"] == [30, 60] and {p["setting"] for p in result["points"]} == {30, 60}


@pytest.mark.parametrize("settings, match", [
    ({"qualities": [0]}, "grid qualities"), ({"crop": 0}, "crop side"), ({"large_megapixels": 0}, "megapixels"),
])
def test_restore_bench_refuses_bad_settings_before_measuring(tmp_path, monkeypatch, settings, match):
    monkeypatch.setattr(bench_restore, "benchmark", lambda *a, **k: pytest.fail("measured before checking"))
    with pytest.raises(CjpgError, match=match):
        bench_restore.run(str(_photos(tmp_path / "photos")), str(tmp_path / "out"), "r", None, **settings)


# -- train ------------------------------------------------------------------------
def _config(tmp_path: Path, **changes) -> Path:
    cfg = {"recipe": "restore", "data": str(_photos(tmp_path / "data", n=3, side=64)), "out": str(tmp_path / "run"),
           "steps": 2, "patch": 32, "batch": 2, "val_images": 1, "val_every": 2, "checkpoint_every": 1, "threads": 1,
           "restore_config": {"ch1": 8, "ch2": 8, "blocks": 1}, **changes}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    return path


def test_every_shipped_config_passes_the_checks():
    for path in sorted(CONFIGS.glob("*.json")):
        TrainConfig.load(path).check()


@pytest.mark.parametrize("changes, args, match", [
    ({"steps": "2"}, [], r"wrong type .*steps: '2'"),
    ({"trellis": 1}, [], "wrong type .*trellis"),
    ({"quality_range": [0, 200]}, [], "quality_range must be two qualities"),
    ({"restore_config": {"ch1": 8, "wide": 1}}, [], "restore_config .* does not suit RestoreNet"),
    ({}, ["--steps", "0"], "at least 1: steps 0"),
    ({"val_every": 0}, [], "at least 1: val_every 0"),
])
def test_a_bad_training_setting_is_one_line(tmp_path, capsys, changes, args, match):
    assert cli.main(["train", "--config", str(_config(tmp_path, **changes)), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnjpeg: error: ") and len(err.splitlines()) == 1
    assert re.search(match, err)


def test_train_resume_export_and_a_finished_run(tmp_path, capsys):
    config = _config(tmp_path)
    assert cli.main(["train", "--config", str(config)]) == 0
    assert cli.main(["train", "--config", str(config), "--steps", "3", "--export", str(tmp_path / "w.safetensors")]) == 0
    log = [json.loads(line)["step"] for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert log == [2, 3]
    from safetensors.torch import load_file

    assert any(k.startswith("decoder.") for k in load_file(tmp_path / "w.safetensors"))
    capsys.readouterr()
    assert cli.main(["train", "--config", str(config), "--steps", "2"]) == 0
    assert "is at step 3 of 2: nothing left to train" in capsys.readouterr().err


def _checkpoint(tmp_path: Path, payload) -> Path:
    (tmp_path / "run").mkdir(parents=True, exist_ok=True)
    if isinstance(payload, bytes):
        (tmp_path / "run" / "checkpoint.pt").write_bytes(payload)
    else:
        torch.save(payload, tmp_path / "run" / "checkpoint.pt")
    return _config(tmp_path)


class _Code:
    def __reduce__(self):
        return print, ("unpickled code ran",)


@pytest.mark.parametrize("payload, match", [
    (b"PK\x03\x04 cut short", "no readable checkpoint"),
    (b"hello world", "no readable checkpoint"),
    ({"nets": {}, "opt": {}, "step": 0, "elapsed": 0.0}, "holds no 'decoder'"),
    ({"nets": {"decoder": {"x": torch.zeros(1)}}, "opt": {}, "step": 0, "elapsed": 0.0}, "state_dict"),
    ({"nets": {}, "step": 0, "code": _Code()}, "objects other than tensors"),
])
def test_a_checkpoint_that_cannot_be_resumed_is_one_line_and_runs_no_code(tmp_path, capsys, payload, match):
    assert cli.main(["train", "--config", str(_checkpoint(tmp_path, payload))]) == 2
    out = capsys.readouterr()
    assert match in out.err and len(out.err.splitlines()) == 1 and "unpickled code ran" not in out.out


def test_an_init_file_that_is_missing_or_does_not_fit_is_named(tmp_path):
    cfg = TrainConfig.load(_config(tmp_path, init=str(tmp_path / "none.pt")))
    with pytest.raises(ValueError, match="no such checkpoint or weights file"):
        Trainer(cfg)
    (tmp_path / "bad.safetensors").write_bytes(b"not safetensors")
    cfg.init = str(tmp_path / "bad.safetensors")
    with pytest.raises(ValueError, match="bad.safetensors: it is no readable checkpoint"):
        Trainer(cfg)
    torch.save({"nets": {"decoder": {"x": torch.zeros(1)}}}, tmp_path / "other.pt")
    cfg.init = str(tmp_path / "other.pt")
    with pytest.raises(ValueError, match=r"cannot start \(init\) from .*other.pt"):
        Trainer(cfg)


# -- devices and the zoo ----------------------------------------------------------
@pytest.fixture
def fresh_stages():
    models.load_stages.cache_clear()
    yield
    models.load_stages.cache_clear()


@pytest.mark.parametrize("value, match", [("foo", "not one of auto, cpu"), ("cuda:x", "not one of"), ("cuda:²", "not one of"),
                                          ("cuda:99", "CUDA device")])
def test_an_unusable_device_setting_is_named(monkeypatch, value, match):
    monkeypatch.setenv("CNNJPEG_DEVICE", value)
    with pytest.raises(CjpgError, match=match):
        inference.device()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_asked_for_without_cuda_is_one_line(tmp_path, monkeypatch, capsys, fresh_stages):
    monkeypatch.setenv("CNNJPEG_DEVICE", "cuda")
    src = _png(tmp_path / "g.png", data.camera()[:48, :48])
    assert cli.main(["encode", str(src), "-m", "joint-s-v8", "-o", str(tmp_path / "g.cjpg")]) == 2
    assert "CNNJPEG_DEVICE='cuda', but torch sees 0 CUDA device(s)" in capsys.readouterr().err


@pytest.mark.parametrize("value, device", [("CPU", "cpu"), (" cpu ", "cpu"), ("", None), ("auto", None)])
def test_device_settings_that_mean_cpu_or_auto(monkeypatch, value, device):
    monkeypatch.setenv("CNNJPEG_DEVICE", value)
    assert inference.device() == (device or ("cuda" if torch.cuda.is_available() else "cpu"))


def test_half_precision_setting(monkeypatch):
    monkeypatch.delenv("CNNJPEG_HALF", raising=False)
    assert inference.half_precision("cuda") and not inference.half_precision("cpu")
    for value, half in (("0", False), ("off", False), ("False", False), ("yes", True), ("1", True)):
        monkeypatch.setenv("CNNJPEG_HALF", value)
        assert inference.half_precision("cuda:0") is half
    monkeypatch.setenv("CNNJPEG_HALF", "maybe")
    with pytest.raises(CjpgError, match="CNNJPEG_HALF='maybe' is neither on"):
        inference.half_precision("cuda")
    assert not inference.half_precision("cpu")  # not consulted off CUDA


def test_weights_that_fail_their_hash_are_refused(tmp_path, monkeypatch, capsys, fresh_stages):
    info = models.model_info("joint-s-v8")
    monkeypatch.setitem(models.registry(), "joint-s-v8", dataclasses.replace(info, sha256="0" * 64))
    src = _png(tmp_path / "g.png", data.camera()[:48, :48])
    assert cli.main(["encode", str(src), "-m", "joint-s-v8", "-o", str(tmp_path / "g.cjpg")]) == 2
    assert "fail their SHA-256 check" in capsys.readouterr().err and not (tmp_path / "g.cjpg").exists()
