"""The benchmark on tiny images: every curve measured, the report agrees with the JSON."""

import argparse
import json

import numpy as np
import pytest
from PIL import Image
from skimage import data

from napari_cnnjpeg import CjpgError, available_models, cli, codec
from napari_cnnjpeg.eval import bench
from napari_cnnjpeg.format import container
from napari_cnnjpeg.nn import models

QUALITIES = [20, 50, 80]


def _tiny() -> list[tuple[str, np.ndarray]]:
    return [("astronaut", data.astronaut()[40:104, 200:264]), ("chelsea", data.chelsea()[100:164, 200:264])]


@pytest.fixture(scope="module")
def result():
    return bench.benchmark(_tiny(), QUALITIES, progress=False)


@pytest.fixture(scope="module")
def written(result, tmp_path_factory):
    return bench.write_report(result, tmp_path_factory.mktemp("bench"))


def _cells(markdown: str, columns: int, section: str) -> list[list[str]]:
    """Body rows of the pipe tables with ``columns`` columns under the heading ``## section``."""
    body = markdown.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in body.splitlines() if line.startswith("|")]
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]
    return [r for r in rows if len(r) == columns and not r[0].startswith("---") and r[0] not in ("codec", "image", "model")]


def test_every_codec_and_setting_is_measured(result):
    codecs = set(available_models(8)) | set(result["references"])
    assert set(result["models"]) == set(available_models(8))
    skipped = {n.split()[0] for n in result["notes"]}
    assert set(result["references"]) | skipped == set(bench.REFERENCES)
    assert {p["codec"] for p in result["points"]} == codecs
    assert len(result["points"]) == 2 * len(codecs) * len(QUALITIES)
    assert set(result["bd"]) == codecs - {"jpeg"}
    assert set(result["speed"]) == set(result["curves"]) == codecs


def test_values_are_sane(result):
    for p in result["points"]:
        assert 0 < p["bpp"] < 24 and 15 < p["psnr"] < 60 and 0 < p["ssim"] <= 1
        assert p["bpp"] == round(p["bytes"] * 8 / (64 * 64), 4)
    for codec in result["curves"]:
        for name in ("astronaut", "chelsea"):
            pts = [p for p in result["points"] if p["codec"] == codec and p["image"] == name]
            pts.sort(key=lambda p: p["setting"])
            assert np.all(np.diff([p["psnr"] for p in pts]) > 0), (codec, name)
            if codec == "jpeg":
                assert np.all(np.diff([p["bpp"] for p in pts]) > 0)
    for codec, v in result["bd"].items():
        if codec in result["models"] and models.model_info(codec).downscale > 1:
            continue  # a compact model's curve need not reach JPEG's quality range on 64-pixel crops
        assert v["images"] == 2 and np.isfinite(v["bd_rate_psnr"])
    for v in result["speed"].values():
        assert v["encode_mpx_s"] > 0 and v["decode_mpx_s"] > 0
    assert result["machine"]["peak_rss_mib"] > 0


def test_report_files_agree_with_the_json(result, written):
    assert set(written) == {"report", "json", "plot"}
    assert written["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads(written["json"].read_text())
    assert saved["points"] == result["points"]
    md = written["report"].read_text()
    bd_rows = {r[0]: r for r in _cells(md, 6, "Bjontegaard deltas against plain JPEG")}
    assert set(bd_rows) == set(saved["bd"])
    for codec, row in bd_rows.items():
        for cell, key in zip(row[1:4], ("bd_rate_psnr", "bd_psnr", "bd_rate_ssim")):
            assert (None if cell == "n/a" else float(cell)) == saved["bd"][codec][key]
        lo, hi = saved["bd"][codec]["common_bpp"]
        assert row[5] == f"{lo:.4f}-{hi:.4f}" and 0 < lo < hi
    curve_rows = _cells(md, 5, "Mean rate-distortion points")
    assert len(curve_rows) == sum(len(c) for c in saved["curves"].values())
    for codec, setting, *cells in curve_rows:
        point = next(p for p in saved["curves"][codec] if p["setting"] == int(setting))
        assert [float(c) for c in cells] == [point["bpp"], point["psnr"], point["ssim"]]
    gain_rows = _cells(md, 5, "Gain over plain JPEG at equal bpp, per setting")
    assert len(gain_rows) == sum(len(g) for g in saved["gains"].values())
    for model, setting, bpp, d_psnr, d_ssim in gain_rows:
        g = next(r for r in saved["gains"][model] if r["setting"] == int(setting))
        cells = [None if c == "n/a" else float(c) for c in (bpp, d_psnr, d_ssim)]
        assert cells == [g["bpp"], g["d_psnr"], g["d_ssim"]]
    speed_rows = _cells(md, 3, "Speed")
    assert {r[0]: [float(r[1]), float(r[2])] for r in speed_rows} == {
        c: [v["encode_mpx_s"], v["decode_mpx_s"]] for c, v in saved["speed"].items()
    }


def test_equal_rate_table_interpolates_jpeg(monkeypatch):
    """A model that is plain JPEG under another id: zero deltas, and JPEG interpolated onto its own point."""
    reg = {**models.registry(), "same": models.ModelInfo("same", "plain JPEG again", "baseline")}
    monkeypatch.setattr(models, "registry", lambda: reg)
    monkeypatch.setattr(codec, "strip_jfif", lambda data: data)  # bit for bit plain JPEG's files
    # metadata stored as is: "same" and "jpeg" take equal bytes
    monkeypatch.setattr(container, "_deflate", lambda doc: doc)
    monkeypatch.setattr(container, "_inflate", lambda doc, limit=None: doc)
    result = bench.benchmark(_tiny(), [20, 30, 60], ["same"], references=(), pair=["chelsea"], progress=False)
    assert result["bd"]["same"]["bd_rate_psnr"] == 0 and result["bd"]["same"]["bd_psnr"] == 0
    rows = result["equal_rate"]["rows"]
    assert [r["codec"] for r in rows] == ["jpeg (interpolated)", "same q30"]
    assert rows[0]["bpp"] == rows[1]["bpp"]
    assert rows[0]["psnr"] == pytest.approx(rows[1]["psnr"]) and rows[0]["ssim"] == pytest.approx(rows[1]["ssim"])


def test_gray_mode_measures_luma():
    result = bench.benchmark(_tiny()[:1], [30, 70], ["jpeg"], gray=True, references=("webp",), progress=False)
    assert result["mode"] == "gray" and result["images"][0]["shape"] == [64, 64]
    assert {p["codec"] for p in result["points"]} == {"jpeg", "webp"}
    assert all(p["psnr"] > 20 for p in result["points"])


def test_bad_input_is_a_clear_error():
    with pytest.raises(CjpgError, match="pair"):
        bench.benchmark(_tiny(), [50], ["jpeg"], references=(), pair=["nope"], progress=False)
    with pytest.raises(CjpgError, match="8-bit"):
        bench.benchmark([("f", np.zeros((16, 16), np.float32))], [50], ["jpeg"], references=(), progress=False)
    with pytest.raises(CjpgError, match="unknown model"):
        bench.benchmark(_tiny(), [50], ["nope"], references=(), progress=False)


def test_command_line(tmp_path, capsys):
    src = tmp_path / "data"
    src.mkdir()
    for name, image in _tiny():
        Image.fromarray(image).save(src / f"{name}.png")
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(["--data", str(src), "--out", str(tmp_path / "a"), "--qualities", "30", "60",
                              "--models", "jpeg", "--references", "webp", "--threads", "1"])
    assert bench.run(args) == 0
    saved = json.loads((tmp_path / "a" / "report.json").read_text())
    assert saved["dataset"] == str(src) and saved["equal_rate"]["images"] == ["astronaut", "chelsea"]
    assert "webp: BD-rate" in capsys.readouterr().out
    assert cli.main(["bench", "--data", str(src), "--out", str(tmp_path / "b"), "--qualities", "50",
                     "--references", "--pair", "chelsea", "astronaut", "--name", "kodak"]) == 0
    assert {p.name for p in (tmp_path / "b").iterdir()} == {"kodak.md", "kodak.json", "kodak.png"}
    assert "![rate-distortion](kodak.png)" in (tmp_path / "b" / "kodak.md").read_text()
    assert cli.main(["bench", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "c")]) == 2


def test_update_cards_records_the_deltas(tmp_path, result):
    zoo = tmp_path / "zoo.json"
    models_measured = [m for m in result["bd"] if m in available_models()]
    zoo.write_text(json.dumps([{"id": m, "card": {}} for m in models_measured] + [{"id": "other", "card": {}}]))
    bench.update_cards(result, zoo)
    saved = {e["id"]: e["card"] for e in json.loads(zoo.read_text())}
    assert saved["other"] == {}
    for m in models_measured:
        bd_psnr = result["bd"][m]["bd_psnr"]
        assert saved[m]["kodak"]["bd_psnr"] == (None if np.isnan(bd_psnr) else bd_psnr)
        assert saved[m]["kodak"]["decode_mpx_s"] == result["speed"][m]["decode_mpx_s"]


def test_equal_rate_table_matches_a_model_by_bpp_not_by_quality():
    """A model whose files are smaller at each quality is shown at the setting whose bpp is nearest JPEG's."""
    result = bench.benchmark(_tiny(), [20, 30, 50, 70], ["jpeg-tuned"], references=(), pair=["chelsea"],
                             progress=False)
    pts = {(p["codec"], p["setting"]): p["bpp"] for p in result["points"] if p["image"] == "chelsea"}
    target = pts[("jpeg", 30)]
    nearest = min((s for c, s in pts if c == "jpeg-tuned"), key=lambda s: abs(pts[("jpeg-tuned", s)] - target))
    rows = result["equal_rate"]["rows"]
    assert rows[1]["codec"] == f"jpeg-tuned q{nearest}" and rows[0]["bpp"] == rows[1]["bpp"]
    assert nearest != 30  # the tuned tables make smaller files at the same quality


def test_stock_viewer_figures(result, written):
    """Every model's payload is also measured as a stock viewer shows it; no network, no difference."""
    assert set(result["bd_view"]) == set(result["models"]) - {"jpeg"}
    for p in result["points"]:
        if p["codec"] in result["models"] and bench._has_network(p["codec"]):
            assert 10 < p["psnr_view"] < 60 and 0 < p["ssim_view"] <= 1
        else:
            assert "psnr_view" not in p
    if "jpeg-tuned" in result["bd_view"]:
        assert result["bd_view"]["jpeg-tuned"] == result["bd"]["jpeg-tuned"]
    rows = {r[0]: r for r in _cells(written["report"].read_text(), 6, "Stock viewer")}
    assert set(rows) == set(result["bd_view"])
    for model, row in rows.items():
        assert row[1] == models.model_info(model).stock_viewer
        value = result["bd_view"][model]["bd_psnr"]
        assert (None if row[3] == "n/a" else float(row[3])) == (None if np.isnan(value) else value)


def test_sanity_table_covers_the_whole_range(result, written):
    assert result["sanity_qualities"] == sorted(set(bench.SANITY_QUALITIES) - set(QUALITIES))
    assert set(result["sanity"]) == set(result["models"])
    for model, v in result["sanity"].items():
        assert [p["setting"] for p in v["curve"]] == sorted(QUALITIES + result["sanity_qualities"])
        assert v["ceiling_setting"] == 100
    md = written["report"].read_text()
    rows = {r[0]: r for r in _cells(md, 6, "Whole quality range (sanity)")}
    assert {m: int(r[2]) for m, r in rows.items()} == {m: len(v["falls"]) for m, v in result["sanity"].items()}
    assert len(_cells(md, 5, "Whole quality range (sanity)")) == sum(len(v["curve"]) for v in result["sanity"].values())


def test_sanity_flags_a_fall():
    def pt(q, b, p):
        return {"image": "a", "codec": "m", "setting": q, "bpp": b, "psnr": p, "ssim": 0.9}

    ok = [pt(10, 0.2, 25.0), pt(50, 0.5, 30.0), pt(90, 1.0, 29.97), pt(100, 1.2, 31.0)]
    assert bench._sanity(ok, ["m"], ["a"], [10, 50, 90, 100])["m"]["falls"] == []  # a 0.03 dB dip is tolerated
    bad = [pt(10, 0.2, 25.0), pt(50, 0.5, 30.0), pt(90, 1.0, 29.0), pt(100, 0.9, 31.0)]
    falls = bench._sanity(bad, ["m"], ["a"], [10, 50, 90, 100])["m"]["falls"]
    assert [(f["setting"], f["psnr_fall"], f["bpp_fall"]) for f in falls] == [(90, 1.0, 0.0), (100, 0.0, 0.1)]


def test_scientific_bench_on_16_bit_tiffs(tmp_path):
    """A folder of 16-bit TIFFs gets the scientific table: 12-bit default path vs the 8-bit path."""
    import json

    import tifffile

    from napari_cnnjpeg.cli import main
    from napari_cnnjpeg.eval import bench_scientific

    y, x = np.mgrid[0:64, 0:80].astype(np.float64)
    data = tmp_path / "micro"
    data.mkdir()
    tifffile.imwrite(data / "a.tif", (1000 + 800 * np.sin(x / 7) * np.cos(y / 5) + 3 * x).astype(np.uint16))
    tifffile.imwrite(data / "b.tif", np.stack([(200 + 40 * k + 30 * np.hypot(x - 40, y - 32)) for k in range(4)])
                     .astype(np.uint16))
    assert bench_scientific.is_scientific_folder(data) and not bench_scientific.is_scientific_folder(tmp_path)
    assert main(["bench", "--data", str(data), "--out", str(tmp_path / "out"), "--name", "sci",
                 "--models", "jpeg", "--references", "jpeg2000-12bit"]) == 0
    result = json.loads((tmp_path / "out" / "sci.json").read_text())
    assert result["planes"] == ["a", "b[0]", "b[2]", "b[3]"]  # up to 3 planes of a stack, evenly spaced
    assert set(result["bd"]) == {"default", "jpeg-12bit-weighted", "jpeg-12bit", "jpeg2000-12bit"}
    assert result["ceiling_q100"]["min"] > 60
    report = (tmp_path / "out" / "sci.md").read_text()
    assert "| `default` |" in report and "Ceiling of the default path" in report


def test_speed_bench_writes_its_table(tmp_path):
    """The speed benchmark (``cnnjpeg bench --speed``): MP/s per model and device, stage shares, the network alone."""

    from napari_cnnjpeg.eval import bench_speed

    result = bench_speed.run(["restore-s-v2", "jpeg"], megapixels=0.1, repeats=1, small=2, out=tmp_path, checks=False)
    assert result == json.loads((tmp_path / "benchmarks-speed.json").read_text())
    rows = {(r["model"], r["images"]): r for r in result["rows"]}
    assert {m for m, _ in rows} == {"restore-s-v2", "jpeg"} and len(rows) == 4
    for (model, _), r in rows.items():
        assert r["decode_mpx_s"] > 0 and r["encode_mpx_s"] > 0
        assert abs(sum(r["stage_share"].values()) - 1) < 0.05 or model == "jpeg"
        assert ("network_mpx_s" in r) == (model != "jpeg")
    assert 0 <= bench_speed.half_cost("restore-s-v2", next(iter(bench_speed.test_images(0.01, 0).values()))[0][:64, :64],
                                      qualities=(50,)) < 0.02
    assert "| restore-s-v2 | cpu |" in (tmp_path / "benchmarks-speed.md").read_text()


def test_codec_and_speed_bench_run_with_only_the_device_machine_packages(tmp_path):
    """scripts/device_check.sh runs where only torch, numpy, Pillow, safetensors and scikit-image exist."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "BLOCK = {'imagecodecs', 'napari', 'matplotlib', 'tqdm', 'onnxruntime', 'dask', 'zarr', 'numcodecs',\n"
        "         'magicgui', 'qtpy', 'distributed', 'ome_zarr', 'PyQt6'}\n"
        "class Blocker:\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] in BLOCK:\n"
        "            raise ImportError('not on the device machine: ' + name)\n"
        "sys.meta_path.insert(0, Blocker())\n"
        "from napari_cnnjpeg.eval import bench_speed\n"
        "r = bench_speed.run(['restore-s-v2', 'jpeg'], megapixels=0.05, repeats=1, small=1, checks=False)\n"
        "assert {row['runtime'] for row in r['rows']} <= {'torch', 'nnpack', '-'}, r  # no ONNX Runtime\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-2000:]
