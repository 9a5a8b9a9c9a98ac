"""The cnnjpeg command line."""

import json

import numpy as np
import pytest
from PIL import Image
from skimage import data

import napari_cnnjpeg as cj
from napari_cnnjpeg.cli import main


def test_encode_info_decode(tmp_path, capsys):
    src = tmp_path / "cam.png"
    Image.fromarray(data.camera()).save(src)
    assert main(["encode", str(src), "-q", "50", "-m", "jpeg"]) == 0
    cjpg = tmp_path / "cam.cjpg"
    assert cjpg.exists()
    capsys.readouterr()
    assert main(["info", str(cjpg)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["quality"] == 50 and info["model"] == "jpeg" and info["bytes"] == cjpg.stat().st_size
    for ext in ("png", "tif"):
        out = tmp_path / f"back.{ext}"
        assert main(["decode", str(cjpg), "-o", str(out)]) == 0
        back = np.asarray(Image.open(out)) if ext == "png" else __import__("tifffile").imread(out)
        np.testing.assert_array_equal(back, cj.imread(cjpg))


def test_one_file_to_a_new_folder_and_a_missing_one(tmp_path, capsys):
    """--out-dir is made for one file as for many; -o into a folder that is not there is a clear error."""
    src = tmp_path / "cam.png"
    Image.fromarray(data.camera()[:64, :64]).save(src)
    assert main(["encode", str(src), "-m", "jpeg", "--out-dir", str(tmp_path / "new" / "dir")]) == 0
    assert (tmp_path / "new" / "dir" / "cam.cjpg").exists()
    capsys.readouterr()
    assert main(["encode", str(src), "-m", "jpeg", "-o", str(tmp_path / "nowhere" / "cam.cjpg")]) == 2
    assert "there is no folder" in capsys.readouterr().err and not (tmp_path / "nowhere").exists()


def test_encode_many_to_folder(tmp_path):
    srcs = []
    for i, img in enumerate([data.camera(), data.astronaut()]):
        p = tmp_path / f"in{i}.png"
        Image.fromarray(img).save(p)
        srcs.append(str(p))
    out = tmp_path / "out"
    out.mkdir()
    assert main(["encode", *srcs, "--out-dir", str(out), "-m", "jpeg", "--workers", "2"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["in0.cjpg", "in1.cjpg"]


def test_decode_and_restore_many_use_the_batch_engine(tmp_path, capsys):
    """Several inputs (or a folder) run through cnnjpeg batch's engine; one bad input fails alone."""
    src = tmp_path / "in"
    src.mkdir()
    images = [data.camera()[:96, :128], data.astronaut()[:96, :128]]
    for i, img in enumerate(images):
        cj.imwrite(src / f"c{i}.cjpg", img, quality=60, model="restore-s-v2")
        Image.fromarray(img).save(src / f"c{i}.jpg", quality=30)
    (src / "bad.cjpg").write_bytes(b"CJPG?")
    out = tmp_path / "out"
    assert main(["decode", str(src), "--out-dir", str(out), "--workers", "2"]) == 1
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["done"] == 2 and [f["input"] for f in summary["failed"]] == [str(src / "bad.cjpg")]
    for i in range(2):
        assert np.array_equal(np.asarray(Image.open(out / f"c{i}.png")), cj.decode(src / f"c{i}.cjpg"))
    rc = main(["restore", str(src / "c0.jpg"), str(src / "c1.jpg"), "--out-dir", str(out), "--format", "tif"])
    assert rc == 0
    import tifffile

    for i in range(2):
        assert np.array_equal(tifffile.imread(out / f"c{i}.tif"), cj.restore(src / f"c{i}.jpg"))
    with pytest.raises(SystemExit):
        main(["restore", str(src / "c0.jpg"), "--format", "bmp"])


def test_tiff_stack_roundtrip(tmp_path):
    import tifffile

    stack = (np.arange(3 * 32 * 32).reshape(3, 32, 32) % 4000).astype(np.uint16)
    src = tmp_path / "stack.tif"
    tifffile.imwrite(src, stack)
    assert main(["encode", str(src), "-m", "jpeg", "-q", "95"]) == 0
    i = cj.info(tmp_path / "stack.cjpg")
    assert i["shape"] == (3, 32, 32) and i["dtype"] == "uint16"


def test_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.cjpg"
    bad.write_bytes(b"\xff\xd8garbage")
    assert main(["info", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cnnjpeg: error:") and "\n" not in err
    assert main(["decode", str(tmp_path / "missing.cjpg"), "-o", str(tmp_path / "x.png")]) == 2
    src = tmp_path / "c.png"
    Image.fromarray(data.camera()).save(src)
    assert main(["encode", str(src), "-m", "no-such-model"]) == 2
    assert "unknown model" in capsys.readouterr().err
    cfg = tmp_path / "cuda.json"
    cfg.write_text('{"recipe": "restore", "device": "cuda", "data": "%s"}' % tmp_path)
    if not __import__("torch").cuda.is_available():
        assert main(["train", "--config", str(cfg)]) == 2
        assert "CUDA" in capsys.readouterr().err


def test_demo_writes_files_and_table(tmp_path, capsys):
    src = tmp_path / "crop.png"
    Image.fromarray(data.astronaut()[:96, :128]).save(src)
    assert main(["demo", str(src), "--out", str(tmp_path / "demo"), "-q", "30"]) == 0
    out = capsys.readouterr().out
    assert "| image | format | quality | bpp | PSNR (dB) | SSIM |" in out
    files = sorted((tmp_path / "demo").iterdir())
    assert files and all(cj.info(f)["shape"] == (96, 128, 3) for f in files)
    rows = [line for line in out.splitlines() if line.startswith("| crop |")]
    assert len(rows) == len(files)


@pytest.mark.parametrize("cmd", [["encode"], ["nonsense"]])
def test_usage_errors(cmd):
    with pytest.raises(SystemExit) as exc:
        main(cmd)
    assert exc.value.code == 2


def test_models_command_says_what_each_model_is(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for model in cj.available_models():
        assert model in out and cj.model_summary(model) in out
    assert f"{cj.default_model()} (default)" in out


def test_encode_notes_a_quality_outside_the_models_range(tmp_path, capsys):
    src = tmp_path / "a.png"
    Image.fromarray(data.astronaut()[:64, :64]).save(src)
    assert main(["encode", str(src), "-q", "3", "-m", "jpeg-tuned"]) == 0
    lo = cj.nn.models.model_info("jpeg-tuned").quality_range[0]
    assert f"quality 3 is coded as {lo}" in capsys.readouterr().err
    assert cj.info(tmp_path / "a.cjpg")["quality"] == lo


def test_a_derived_output_never_replaces_an_existing_file(tmp_path, capsys):
    """`cnnjpeg decode photo.cjpg` would write photo.png, the original the .cjpg was made from: it
    is kept unless --overwrite (or -o names it); several inputs keep what exists and say so."""
    from PIL import Image
    from skimage import data

    from napari_cnnjpeg.cli import main

    original = tmp_path / "photo.png"
    Image.fromarray(data.camera()[:64, :64]).save(original)
    before = original.read_bytes()
    assert main(["encode", str(original), "-q", "50"]) == 0
    assert main(["encode", str(original), "-q", "50"]) == 2  # photo.cjpg exists
    assert main(["decode", str(tmp_path / "photo.cjpg")]) == 2
    assert "photo.png exists; pass --overwrite" in capsys.readouterr().err
    assert original.read_bytes() == before
    assert main(["decode", str(tmp_path / "photo.cjpg"), "-o", str(tmp_path / "named.png")]) == 0
    assert main(["decode", str(tmp_path / "photo.cjpg"), "-o", str(tmp_path / "named.png")]) == 0  # named: replaced
    assert main(["decode", str(tmp_path / "photo.cjpg"), "--overwrite"]) == 0
    assert original.read_bytes() != before
    Image.fromarray(data.camera()[:64, :64]).save(tmp_path / "photo.jpg", quality=30)
    assert main(["restore", str(tmp_path / "photo.jpg"), "-o", str(tmp_path) + "/"]) == 2
    assert "--output names a file" in capsys.readouterr().err
    (tmp_path / "more").mkdir()
    for name in ("a", "b"):
        Image.fromarray(data.camera()[:64, :64]).save(tmp_path / "more" / f"{name}.png")
    assert main(["encode", str(tmp_path / "more")]) == 0
    kept = (tmp_path / "more" / "a.cjpg").read_bytes()
    capsys.readouterr()
    assert main(["encode", str(tmp_path / "more"), "-q", "90"]) == 0
    assert "2 output(s) exist and were kept" in capsys.readouterr().err
    assert (tmp_path / "more" / "a.cjpg").read_bytes() == kept
    assert main(["encode", str(tmp_path / "more"), "-q", "90", "--overwrite"]) == 0
    assert (tmp_path / "more" / "a.cjpg").read_bytes() != kept


def test_train_checks_the_export_path_before_training(tmp_path, capsys):
    from napari_cnnjpeg.cli import main

    assert main(["train", "--config", str(tmp_path / "c.json"), "--export", str(tmp_path / "no" / "w.safetensors")]) == 2
    assert "checked before training" in capsys.readouterr().err


def test_demo_refuses_images_sharing_a_name(tmp_path, capsys):
    from PIL import Image
    from skimage import data

    from napari_cnnjpeg.cli import main

    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        Image.fromarray(data.camera()[:64, :64]).save(tmp_path / folder / "x.png")
    assert main(["demo", str(tmp_path / "a" / "x.png"), str(tmp_path / "b" / "x.png"), "--out", str(tmp_path / "o")]) == 2
    assert "share a name" in capsys.readouterr().err
