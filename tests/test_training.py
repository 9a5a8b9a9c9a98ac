"""Training runs a few steps on tiny data, checkpoints, resumes and exports."""

import json

import numpy as np
import pytest
import torch
from skimage import data

from napari_cnnjpeg.training import TrainConfig, Trainer, register


def _images():
    return [(f"im{i}.png", im) for i, im in enumerate([data.astronaut()[:128, :128], data.chelsea()[:128, :128],
                                                      data.coffee()[:128, :128]])]


def _cfg(tmp_path, recipe):
    return TrainConfig(recipe=recipe, out=str(tmp_path / recipe), steps=4, patch=32, batch=2, val_images=1,
                       val_every=2, checkpoint_every=2, threads=1,
                       restore_config={"ch1": 8, "ch2": 8, "blocks": 1}, pre_config={"ch1": 8, "ch2": 8, "blocks": 1})


@pytest.mark.parametrize("recipe", ["restore", "joint", "compact"])
def test_train_resume_export(tmp_path, recipe):
    cfg = _cfg(tmp_path, recipe)
    cfg.steps = 2
    t = Trainer(cfg, _images())
    t.run(progress=False)
    assert t.step == 2 and (tmp_path / recipe / "checkpoint.pt").exists()
    first = {k: v.clone() for k, v in t.nets["decoder"].state_dict().items()}

    # an uninterrupted 4-step run equals 2 steps + resume + 2 steps
    cfg4 = _cfg(tmp_path, recipe)
    resumed = Trainer(cfg4, _images())
    assert resumed.step == 2
    for k, v in resumed.nets["decoder"].state_dict().items():
        assert np.array_equal(v.numpy(), first[k].numpy())
    resumed.run(progress=False)
    straight_cfg = _cfg(tmp_path, recipe)
    straight_cfg.out = str(tmp_path / "straight")
    straight = Trainer(straight_cfg, _images())
    straight.run(progress=False)
    for k, v in resumed.nets["decoder"].state_dict().items():
        np.testing.assert_allclose(v.numpy(), straight.nets["decoder"].state_dict()[k].numpy(), atol=1e-4)

    log = [json.loads(line) for line in (tmp_path / recipe / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [2, 4]
    assert set(log[-1]["val"]) == {"10", "30", "50", "70", "90"}

    entry = register(resumed, f"test-{recipe}", "test model", tmp_path)
    assert entry["kind"] == recipe and len(entry["sha256"]) == 64
    from safetensors.torch import load_file

    stored = load_file(tmp_path / f"test-{recipe}.safetensors")
    assert {v.dtype for v in stored.values()} == {torch.float16} and entry["card"]["weights_dtype"] == "float16"
    for k, v in resumed.nets["decoder"].state_dict().items():
        np.testing.assert_allclose(stored[f"decoder.{k}"].float().numpy(), v.numpy(), rtol=1e-3, atol=1e-4)
    assert json.loads((tmp_path / "zoo.json").read_text())[0]["id"] == f"test-{recipe}"


def test_config_rejects_unknown_settings(tmp_path):
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"recipe": "restore", "stepz": 3}))
    with pytest.raises(ValueError, match="stepz"):
        TrainConfig.load(p)


def test_register_supersedes_but_keeps_old_model(tmp_path):
    cfg = _cfg(tmp_path, "restore")
    cfg.steps = 1
    t = Trainer(cfg, _images())
    t.run(progress=False)
    register(t, "old", "first version", tmp_path, default=True)
    register(t, "new", "second version", tmp_path, default=True, supersedes="old", stock_viewer="a blur")
    zoo = {e["id"]: e for e in json.loads((tmp_path / "zoo.json").read_text())}
    assert zoo["new"]["stock_viewer"] == "a blur" and "stock_viewer" not in zoo["old"]
    assert zoo["old"]["superseded_by"] == "new" and not zoo["old"]["default"] and zoo["new"]["default"]
    assert (tmp_path / "old.safetensors").exists()


def test_batched_proxy_matches_per_image_proxy():
    import torch

    from napari_cnnjpeg.format.jpeg import tables_for_quality
    from napari_cnnjpeg.nn.jpeg_proxy import jpeg_proxy
    from napari_cnnjpeg.training import _proxy_batch

    x = torch.rand(3, 3, 32, 32)
    out, rate = _proxy_batch(x, [10, 50, 90])
    for i, q in enumerate([10, 50, 90]):
        luma, chroma = (torch.from_numpy(t) for t in tables_for_quality(q))
        o, r = jpeg_proxy(x[i : i + 1], luma, chroma)
        torch.testing.assert_close(out[i : i + 1], o)
        torch.testing.assert_close(rate[i : i + 1], r)


def test_parallel_jpeg_round_trips_match_serial():
    from concurrent.futures import ThreadPoolExecutor

    from napari_cnnjpeg.training import _jpeg_batch

    clean = np.stack([im for _, im in _images()])
    args = (clean, [False, True, False], [10, 50, 90], ["4:2:0", "4:2:0", "4:4:4"])
    with ThreadPoolExecutor(2) as pool:
        parallel = _jpeg_batch(*args, pool=pool)
    serial = _jpeg_batch(*args)
    assert all(np.array_equal(a, b) for a, b in zip(parallel, serial))


def test_unknown_device_is_refused(tmp_path):
    cfg = _cfg(tmp_path, "restore")
    cfg.device = "tpu"
    with pytest.raises(ValueError, match="unknown device"):
        Trainer(cfg, _images())


def test_train_images_limits_the_training_split(tmp_path):
    cfg = _cfg(tmp_path, "restore")
    cfg.train_images = 1
    t = Trainer(cfg, _images())
    assert t.train_names == ["im0.png"] and t.val_names == ["im2.png"] and len(t.sampler.images) == 1


def test_register_refuses_a_retired_id(tmp_path):
    cfg = _cfg(tmp_path, "restore")
    cfg.steps = 1
    t = Trainer(cfg, _images())
    (tmp_path / "zoo.json").write_text(json.dumps([{"id": "old", "retired": "weights removed"}]))
    with pytest.raises(ValueError, match="retired"):
        register(t, "old", "again", tmp_path)
    assert not (tmp_path / "old.safetensors").exists()


def test_config_with_bad_tables_is_refused(tmp_path):
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"recipe": "joint", "tables": {"flatness": 0.2}}))
    with pytest.raises(ValueError, match="tuning"):
        TrainConfig.load(p)


def test_emulated_round_trips_match_pillow():
    """The torch emulation gives the training batch Pillow would, gray, RGB and tuned tables alike."""
    from napari_cnnjpeg.format.jpeg import TUNED_TABLES
    from napari_cnnjpeg.training import _jpeg_batch, _to_tensor, emulated_batch

    clean = np.stack([im for _, im in _images()])
    args = ([False, True, False], [5, 50, 97], ["4:2:0", "4:2:0", "4:4:4"])
    for tables in (None, TUNED_TABLES):
        gray_rgb = clean.copy()
        gray_rgb[1] = gray_rgb[1, ..., :1]  # a gray patch is R=G=B, as the sampler makes it
        real, _ = _jpeg_batch(gray_rgb, *args, tables=tables)
        emulated = emulated_batch(_to_tensor(gray_rgb), *args, tables)
        np.testing.assert_array_equal((emulated * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy(), real)


@pytest.mark.parametrize("recipe", ["restore", "joint"])
def test_training_steps_on_the_emulated_path(tmp_path, recipe):
    cfg = _cfg(tmp_path, recipe)
    cfg.jpeg, cfg.view_weight, cfg.steps = "emulated", 0.5 if recipe == "joint" else 0.0, 2
    t = Trainer(cfg, _images())
    before = {k: v.clone() for k, v in t.nets["decoder"].state_dict().items()}
    losses = [t.train_step() for _ in range(2)]
    assert all(np.isfinite(losses))
    assert any(not torch.equal(v, before[k]) for k, v in t.nets["decoder"].state_dict().items())
    if recipe == "joint":  # the encoder learns too: its gradient comes through the proxy
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in t.nets["encoder"].parameters())


def test_emulated_jpeg_is_refused_for_compact(tmp_path):
    cfg = _cfg(tmp_path, "compact")
    cfg.jpeg = "emulated"
    with pytest.raises(ValueError, match="emulated"):
        Trainer(cfg, _images())


def test_view_weight_puts_the_stock_view_in_the_loss(tmp_path):
    """With view_weight, the loss also counts the payload as a viewer without the network shows it."""
    losses = {}
    for w in (0.0, 0.5):
        cfg = _cfg(tmp_path, "joint")
        cfg.out, cfg.view_weight, cfg.loss = str(tmp_path / f"v{w}"), w, "mse"
        t = Trainer(cfg, _images())
        torch.manual_seed(0)  # a decoder that is not yet the identity (its last layer starts at zero)
        torch.nn.init.normal_(t.nets["decoder"].tail.weight, std=0.05)
        losses[w] = t.train_step()
    assert abs(losses[0.0] - losses[0.5]) > 1e-4


def test_ssim_torch_matches_the_metric():
    """The SSIM in the loss is the SSIM the benchmark reports (scikit-image's settings)."""
    from skimage import data

    from napari_cnnjpeg.eval.metrics import ssim
    from napari_cnnjpeg.training import ssim_torch

    a = data.astronaut()[:96, :120]
    b = np.clip(a + np.random.default_rng(0).normal(0, 12, a.shape), 0, 255).astype(np.uint8)
    t = lambda z: torch.from_numpy(z).permute(2, 0, 1)[None].double() / 255  # noqa: E731
    assert ssim_torch(t(a), t(b)).item() == pytest.approx(ssim(a, b), abs=1e-9)


def test_ssim_weight_changes_the_loss_and_trains(tmp_path):
    losses = {}
    for w in (0.0, 0.4):
        cfg = _cfg(tmp_path, "joint")
        cfg.out, cfg.view_weight, cfg.loss, cfg.ssim_weight = str(tmp_path / f"s{w}"), 0.5, "logmse", w
        losses[w] = Trainer(cfg, _images()).train_step()
    assert np.isfinite(losses[0.4]) and losses[0.0] != losses[0.4]


def test_packed_crops_train_with_the_same_held_out_photos(tmp_path):
    """scripts/pack_crops.py: a small folder for a lent GPU, holding out the same photos."""
    import subprocess
    import sys
    from pathlib import Path

    from PIL import Image

    src = tmp_path / "src"
    src.mkdir()
    for name, im in [("a", data.astronaut()), ("b", data.chelsea()), ("c", data.coffee())]:
        Image.fromarray(im).save(src / f"{name}.png")
    script = Path(__file__).resolve().parent.parent / "scripts" / "pack_crops.py"
    out = tmp_path / "packed"
    subprocess.run([sys.executable, str(script), str(src), str(out), "--budget-mib", "0.4", "--crop", "128",
                    "--val-images", "1"], check=True, capture_output=True)
    files = sorted(p.name for p in out.iterdir())
    assert files[-1] == "zz-val-c.png" and len(files) > 3
    assert sum(p.stat().st_size for p in out.iterdir()) <= 0.4 * 2**20
    cfg = _cfg(tmp_path, "restore")
    cfg.data, cfg.steps = str(out), 1
    t = Trainer(cfg)
    assert t.val_names == ["zz-val-c"] and all(n.split("-", 1)[1] in ("a", "b") for n in t.train_names)
    np.testing.assert_array_equal(t.val_crops[0], data.coffee()[72:328, 172:428])  # the same centre crop


@pytest.mark.parametrize("arch", ["PreNet", "RestoreNet"])
def test_grow_state_deepens_a_net_without_changing_its_output(arch):
    """A run may start a deeper net from shipped weights: the new blocks start as the identity."""
    import torch

    from napari_cnnjpeg.nn.nets import build
    from napari_cnnjpeg.training import grow_state

    torch.manual_seed(0)
    small = build(arch)
    for p in small.parameters():
        torch.nn.init.normal_(p, std=0.05)
    deep = build(arch, {"blocks": small.blocks + 2})
    deep.load_state_dict(grow_state(small.state_dict(), deep))
    x, c = torch.rand(2, 3, 32, 32), torch.rand(2, 129)
    with torch.no_grad():
        assert torch.allclose(small(x, c), deep(x, c), atol=1e-6)
    with pytest.raises(ValueError, match="cannot shrink"):
        grow_state(deep.state_dict(), small)


def test_12_bit_training_holds_out_whole_stacks_and_validates_to_quality_100(tmp_path):
    import tifffile

    from napari_cnnjpeg.training import VAL_QUALITIES_12

    y, x = np.mgrid[0:64, 0:64].astype(np.float64)
    folder = tmp_path / "micro"
    folder.mkdir()
    tifffile.imwrite(folder / "a.tif", (1000 + 900 * np.sin(x / 5) * np.cos(y / 7)).astype(np.uint16))
    tifffile.imwrite(folder / "b.tif", np.stack([200 + 50 * k + 30 * np.hypot(x - 30, y - 20) for k in range(3)])
                     .astype(np.uint16))
    cfg = _cfg(tmp_path, "restore")
    cfg.bits, cfg.data, cfg.steps, cfg.loss, cfg.log_floor = 12, str(folder), 2, "logmse", 1e-9
    t = Trainer(cfg)
    assert t.train_names == ["a"] and t.val_names == ["b[0]", "b[1]", "b[2]"]  # the stack stays together
    t.run(progress=False)
    assert t.step == 2 and t.stages().bits == 12
    val = json.loads((tmp_path / "restore" / "log.jsonl").read_text().splitlines()[-1])["val"]
    assert set(val) == {str(q) for q in VAL_QUALITIES_12}
    with pytest.raises(ValueError, match="bits"):
        Trainer(TrainConfig(recipe="compact", bits=12, out=str(tmp_path / "c"), data=str(folder)))


def test_12_bit_joint_training_conditions_and_proxies_as_the_codec_codes(tmp_path):
    """The 12-bit joint recipe: the encoder gets the features the decoder reads from the stream,
    its proxy codes as the real payload does, and the trained stages encode grey planes only."""
    import tifffile

    import napari_cnnjpeg as cj
    from napari_cnnjpeg.training import _jpeg_pair, _proxy_batch12, _quality_features12

    y, x = np.mgrid[0:64, 0:64].astype(np.float64)
    plane = (2000 + 1500 * np.sin(x / 5) * np.cos(y / 7)).astype(np.uint16)
    for q in (20, 80):
        pixels, cond = _jpeg_pair(plane, q, "4:2:0")
        np.testing.assert_allclose(_quality_features12(q), cond, atol=1e-6)
        proxy, rate = _proxy_batch12(torch.from_numpy(plane / 4095.0).float()[None, None].expand(1, 3, -1, -1), [q])
        assert proxy.shape == (1, 3, 64, 64) and rate.shape == (1,) and rate.item() > 0
        rms = [np.sqrt(np.mean((a * 4095 - plane) ** 2)) for a in (pixels, proxy[0, 0].numpy())]
        assert abs(rms[1] - rms[0]) < 0.05 * rms[0]  # the same error; its rounding differs
    folder = tmp_path / "micro"
    folder.mkdir()
    tifffile.imwrite(folder / "a.tif", plane)
    tifffile.imwrite(folder / "b.tif", plane[::-1].copy())
    cfg = _cfg(tmp_path, "joint")
    cfg.bits, cfg.data, cfg.steps, cfg.loss, cfg.log_floor, cfg.plain12_fraction = 12, str(folder), 2, "logmse", 1e-9, 0.5
    t = Trainer(cfg)
    t.run(progress=False)
    val = json.loads((tmp_path / "joint" / "log.jsonl").read_text().splitlines()[-1])["val"]
    assert all("size_ratio" in v for v in val.values())
    stages = t.stages()
    with torch.no_grad():  # an encoder that is not the identity shows where it runs
        stages.encoder.tail.bias.fill_(0.05)
    grey = cj.decode(cj.encode(plane, quality=50, model=cj.nn.models.ModelStages(bits=12, encoder=stages.encoder),
                               mapping=(0, 4095)), model="jpeg")
    assert grey.mean() > plane.mean() + 50
    rgb = np.stack([plane] * 3, axis=-1)
    plain = cj.encode(rgb, quality=50, model=cj.nn.models.ModelStages(bits=12), mapping=(0, 4095))
    assert cj.encode(rgb, quality=50, model=cj.nn.models.ModelStages(bits=12, encoder=stages.encoder),
                     mapping=(0, 4095)) == plain  # colour 12-bit payloads have no encoder stage


def test_12_bit_pairs_are_coded_as_the_codec_writes_them_or_plain():
    """12-bit training pairs: the codec's payload (weighted above quality 60, conditioned on the
    effective steps) or, for ``plain12_fraction`` of the patches, a plain 12-bit JPEG as other writers make it."""
    import napari_cnnjpeg as cj
    from napari_cnnjpeg.format.jpeg import decode_jpeg12, encode_jpeg12, quant_tables
    from napari_cnnjpeg.format.weighting import effective_table
    from napari_cnnjpeg.nn.nets import table_features
    from napari_cnnjpeg.training import PLAIN12, PatchSampler, _jpeg_pair

    y, x = np.mgrid[0:64, 0:64].astype(np.float64)
    plane = (2000 + 1500 * np.sin(x / 5) * np.cos(y / 7)).astype(np.uint16)
    pixels, cond = _jpeg_pair(plane, 80, "4:2:0")
    blob = cj.encode(plane, quality=80, mapping=(0, 4095))  # the default model's payload, decoded plainly
    np.testing.assert_allclose(pixels * 4095, cj.decode(blob, model="jpeg"), atol=0.51)
    weighting = cj.codec.twelve_bit_weighting(80, rgb=False)
    np.testing.assert_allclose(cond, table_features(effective_table(quant_tables(blob)[0], *weighting) / 16, None))
    pixels, cond = _jpeg_pair(plane, 80, PLAIN12)
    plain = encode_jpeg12(plane, 80)
    np.testing.assert_array_equal(np.rint(pixels * 4095), decode_jpeg12(plain))
    np.testing.assert_allclose(cond, table_features(quant_tables(plain)[0] / 16, None))
    cfg = TrainConfig(recipe="restore", bits=12, batch=32, patch=32, plain12_fraction=0.5)
    subs = PatchSampler([plane], cfg).batch(0)["sub"]
    assert 4 < subs.count(PLAIN12) < 28


def test_training_on_the_robustness_grid(tmp_path):
    cfg = _cfg(tmp_path, "restore")
    cfg.variants, cfg.steps = ["jpegli", "grey", "double", "flat"], 2
    t = Trainer(cfg, _images())
    batch = t.sampler.batch(0)
    assert set(batch["sub"]) <= set(cfg.variants)
    t.run(progress=False)
    assert t.step == 2
    with pytest.raises(ValueError, match="variants"):
        Trainer(TrainConfig(recipe="restore", variants=["guetzli"], out=str(tmp_path / "v")), _images())


def test_trellis_training_codes_patches_with_mozjpeg_and_records_it(tmp_path):
    """With trellis, the real JPEG forward pass is mozjpeg's, and the run's model writes its files so."""
    from napari_cnnjpeg.format.jpeg import decode_jpeg, encode_jpeg
    from napari_cnnjpeg.training import _jpeg_pair

    patch = data.astronaut()[:64, :64]
    plain, _ = _jpeg_pair(patch, 40, "4:2:0")
    trellis, _ = _jpeg_pair(patch, 40, "4:2:0", trellis=True)
    assert not np.array_equal(plain, trellis)
    assert np.array_equal(trellis, decode_jpeg(encode_jpeg(patch, 40, trellis=True)))
    cfg = _cfg(tmp_path, "joint")
    cfg.trellis, cfg.steps, cfg.tables = True, 2, {"flatness": 0.2, "chroma_scale": 0.4}
    t = Trainer(cfg, _images())
    t.run(progress=False)
    assert t.step == 2 and t.stages().trellis
    entry = register(t, "joint-trellis-test", "test", tmp_path)
    assert entry["trellis"] is True
    for bad in ({"jpeg": "emulated"}, {"recipe": "restore", "variants": ["grey"]}):
        c = _cfg(tmp_path, bad.get("recipe", "joint"))
        c.trellis = True
        for k, v in bad.items():
            setattr(c, k, v)
        with pytest.raises(ValueError, match="trellis"):
            Trainer(c, _images())


def test_photo_planes_train_12_bit_models_on_dense_textures(tmp_path):
    """``photo_data``: 8-bit photos become 12-bit grey planes with detail finer than 8-bit steps, drawn
    for ``photo_fraction`` of the patches; the held-out planes stay microscopy."""
    import tifffile
    from PIL import Image

    from napari_cnnjpeg.training import photo_planes12

    (name, plane), = photo_planes12([("a", data.astronaut()[:96, :64])])
    assert name == "photo:a" and plane.dtype == np.uint16 and plane.shape == (48, 32)
    assert plane.min() == 0 and plane.max() == 4095 and len(np.unique(plane % 16)) == 16  # not 8-bit steps
    (_, colour), = photo_planes12([("a", data.astronaut()[:96, :64])], rgb_share=1.0)
    assert colour.dtype == np.uint16 and colour.shape == (48, 32, 3) and colour.max() == 4095
    folder, photos = tmp_path / "micro", tmp_path / "photos"
    folder.mkdir()
    photos.mkdir()
    y, x = np.mgrid[0:64, 0:64].astype(np.float64)
    for k in range(2):
        tifffile.imwrite(folder / f"{k}.tif", (1000 + 900 * np.sin(x / (5 + k)) * np.cos(y / 7)).astype(np.uint16))
    Image.fromarray(data.coffee()[:128, :128]).save(photos / "coffee.png")
    cfg = _cfg(tmp_path, "restore")
    cfg.bits, cfg.data, cfg.steps, cfg.batch, cfg.loss, cfg.log_floor = 12, str(folder), 1, 32, "logmse", 1e-9
    cfg.photo_data, cfg.photo_fraction = str(photos), 0.5
    t = Trainer(cfg)
    assert len(t.sampler.photos) == 1 and t.val_names == ["1"]
    t.run(progress=False)
    assert t.step == 1
    dark, bright = np.full((64, 64), 100, np.uint16), np.full((64, 64), 3000, np.uint16)
    from napari_cnnjpeg.training import PatchSampler

    clean = PatchSampler([dark], cfg, [bright]).batch(0)["clean"]
    assert 4 < int((clean.mean(axis=(1, 2, 3)) > 2000).sum()) < 28
    cfg.bits = 8
    with pytest.raises(ValueError, match="photo_fraction"):
        Trainer(cfg, _images())


def test_synthetic_planes_train_12_bit_models_on_ramps_and_flat_shapes(tmp_path):
    """``synthetic_fraction``: ramps, smooth surfaces, flat shapes and few-valued planes (12-bit,
    0-4095, the same for a seed) are drawn for that share of the patches; 8-bit runs refuse them."""
    import tifffile

    from napari_cnnjpeg.training import PatchSampler, synthetic_planes12

    planes = synthetic_planes12(12, size=64, seed=3)
    assert [n.split(":")[1].rstrip("0123456789") for n, _ in planes[:6]] == [
        "ramp", "quadratic", "blobs", "sines", "shapes", "field"]
    assert all(p.dtype == np.uint16 and p.shape == (64, 64) and p.min() == 0 and p.max() == 4095 for _, p in planes)
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(planes, synthetic_planes12(12, size=64, seed=3)))
    ramp = planes[0][1].astype(np.float64)
    assert np.abs(np.diff(ramp, axis=1)).mean() < 200  # smooth, not noise
    folder = tmp_path / "micro"
    folder.mkdir()
    y, x = np.mgrid[0:64, 0:64].astype(np.float64)
    for k in range(2):
        tifffile.imwrite(folder / f"{k}.tif", (1000 + 900 * np.sin(x / (5 + k)) * np.cos(y / 7)).astype(np.uint16))
    cfg = _cfg(tmp_path, "restore")
    cfg.bits, cfg.data, cfg.steps, cfg.loss, cfg.log_floor, cfg.synthetic_fraction = (
        12, str(folder), 1, "logmse", 1e-9, 0.5)
    t = Trainer(cfg)
    assert len(t.sampler.synthetic) == 96
    t.run(progress=False)
    assert t.step == 1
    cfg.batch = 32
    dark, bright = np.full((64, 64), 100, np.uint16), np.full((64, 64), 3000, np.uint16)
    clean = PatchSampler([dark], cfg, synthetic=[bright]).batch(0)["clean"]
    assert 4 < int((clean.mean(axis=(1, 2, 3)) > 2000).sum()) < 28
    cfg.bits = 8
    with pytest.raises(ValueError, match="synthetic_fraction"):
        Trainer(cfg, _images())
