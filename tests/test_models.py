"""The shipped networks: loading, hash checks, gains over JPEG, tiling."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from skimage import data

import napari_cnnjpeg as cj
from napari_cnnjpeg.eval.metrics import psnr, ssim
from napari_cnnjpeg.format.jpeg import encode_jpeg, quant_tables
from napari_cnnjpeg.nn import models


def _of_kind(kind):
    return [m for m in cj.available_models() if models.model_info(m).kind == kind]


#: The offered models that run networks (all but the plain-JPEG baselines).
NETWORKED = [m for m in cj.available_models() if models.model_info(m).weights]


def test_zoo_ships_restore_and_joint_models():
    assert _of_kind("restore"), "no decoder-only model shipped"
    assert _of_kind("joint"), "no joint encoder+decoder model shipped"
    assert cj.default_model() != "jpeg"
    assert NETWORKED
    for m in NETWORKED:
        info = models.model_info(m)
        card = info.card
        assert card["parameters"] > 0 and card["steps"] > 0 and "wall_time_s" in card and "seed" in card
        figures = "kodak" if info.bits == 8 else "scientific"  # 12-bit models: microscopy planes
        assert figures in card, f"model card of {m} lacks its {figures} figures"


@pytest.fixture(scope="module")
def photo():
    return data.astronaut()[64:320, 96:352].copy()


@pytest.mark.parametrize("quality", [10, 30])
def test_restore_beats_jpeg(photo, quality):
    jpeg = encode_jpeg(photo, quality)
    plain = cj.decode(cj.encode(photo, quality=quality, model="jpeg"))
    restored = cj.restore(jpeg)
    assert restored.shape == photo.shape and restored.dtype == np.uint8
    assert psnr(photo, restored) > psnr(photo, plain) + 0.5
    assert ssim(photo, restored) > ssim(photo, plain)


def test_restore_gray_and_array_input(photo):
    gray = photo[..., 1].copy()
    jpeg = encode_jpeg(gray, 20)
    from napari_cnnjpeg.format.jpeg import decode_jpeg

    plain = decode_jpeg(jpeg)
    from_bytes = cj.restore(jpeg)
    from_array = cj.restore(plain, quality=20)
    np.testing.assert_array_equal(from_bytes, from_array)
    assert psnr(gray, from_bytes) > psnr(gray, plain) + 0.3
    assert psnr(gray, cj.restore(plain)) > psnr(gray, plain) + 0.3  # quality estimated from the pixels


@pytest.mark.parametrize("bits", [8, 12, 16])
def test_restore_returns_a_lossless_jpeg_unchanged(photo, bits):
    """Lossless JPEG (SOF3, any precision) has no quantisation to undo: it comes back exactly as written."""
    import imagecodecs

    plane = np.ascontiguousarray(photo[..., 1] if bits == 8 else photo[..., 1].astype(np.uint16) << (bits - 8))
    data = imagecodecs.jpeg8_encode(plane, lossless=True, bitspersample=bits)
    out = cj.restore(bytes(data))
    assert out.dtype == plane.dtype
    np.testing.assert_array_equal(out, plane)
    with pytest.raises(cj.CjpgError, match="truncated lossless JPEG"):
        cj.restore(bytes(data)[: len(data) // 2])


def test_restore_refuses_bad_input(photo):
    with pytest.raises(cj.CjpgError):
        cj.restore(b"not a jpeg")
    with pytest.raises(cj.CjpgError, match="unknown model"):
        cj.restore(encode_jpeg(photo), model="nope")
    with pytest.raises(cj.CjpgError, match="decoder-only"):
        cj.restore(encode_jpeg(photo), model=_of_kind("joint")[0])


def _successor(info, installed: bool = False):
    """The model that superseded ``info`` last (``installed``: the first one whose weights are installed)."""
    while info.superseded_by and not (installed and info.weights):
        info = models.model_info(info.superseded_by)
    return info.id


def test_superseded_models_still_decode_their_files(photo, monkeypatch):
    old = [m for m in models.registry().values() if m.superseded_by]
    assert old
    # the superseded 12-bit models wrote their files before frequency weighting and JPEG_QUALITY_FROM
    monkeypatch.setattr(cj.codec, "twelve_bit_weighting", lambda quality, rgb: None)
    monkeypatch.setattr(cj.codec, "JPEG_QUALITY_FROM", 1)
    for info in old:
        assert info.id not in cj.available_models() and _successor(info) in cj.available_models()
        image = photo if info.bits == 8 else photo[..., 1].astype(np.uint16) * 16  # 12-bit models: deep data
        blob = cj.encode(image, quality=30 if info.bits == 8 else 80, model=info.id)
        assert info.sha256.startswith(cj.info(blob)["model_sha256"])
        assert psnr(image, cj.decode(blob), 4080) > psnr(image, cj.decode(blob, model="jpeg"), 4080)


def test_retired_restore_model_is_decoded_by_its_successor(photo):
    """A decoder-only model whose weights were removed: its files (plain JPEG) restore with its successor."""
    retired = [m for m in models.registry().values() if m.kind == "restore" and m.superseded_by and not m.weights]
    assert retired, "no retired model to test"
    for info in retired:
        assert models.load_stages(info.id).decoder is models.load_stages(_successor(info, installed=True)).decoder


def test_weights_stay_under_20_mb():
    """Superseded models stay installed so that their files decode; the package stays small (issue 11: 50 MB)."""
    from importlib import resources

    folder = resources.files("napari_cnnjpeg") / "weights"
    total = sum(f.stat().st_size for f in map(Path, folder.iterdir()) if f.suffix == ".safetensors")
    assert 0 < total <= 20_000_000
    listed = {e.weights for e in models.registry().values() if e.weights}
    assert listed == {f.name for f in map(Path, folder.iterdir()) if f.suffix == ".safetensors"}


@pytest.mark.parametrize("m", [m for m in NETWORKED if models.model_info(m).bits == 8])
def test_models_roundtrip_through_cjpg(photo, m):
    blob = cj.encode(photo, quality=30, model=m)
    info = cj.info(blob)
    assert info["model"] == m and models.model_info(m).sha256.startswith(info["model_sha256"])
    out = cj.decode(blob)
    assert out.shape == photo.shape and out.dtype == np.uint8
    plain_payload = cj.decode(blob, model="jpeg")
    assert psnr(photo, out) > psnr(photo, plain_payload)


def test_compact_model_wins_at_low_rate(photo):
    """At about 0.3 bpp the half-resolution model beats plain JPEG and the decoder-only model
    given at least as many bytes."""
    (m,) = _of_kind("compact")
    blob = cj.encode(photo, quality=30, model=m)
    assert cj.info(blob)["downscale"] == 2
    mine = psnr(photo, cj.decode(blob))
    for other, margin in (("jpeg", 1.0), (models.default_restore_model(), 0.2)):
        same = next(b for q in range(1, 101) if len(b := cj.encode(photo, quality=q, model=other)) >= len(blob))
        assert mine > psnr(photo, cj.decode(same)) + margin, other


def test_model_on_16bit_stack():
    m = _of_kind("restore")[0]
    stack = (data.camera()[:64, :96].astype(np.uint16) * 200)[None].repeat(2, axis=0)
    out = cj.decode(cj.encode(stack, quality=50, model=m))
    assert out.dtype == np.uint16 and out.shape == stack.shape


def test_hash_check_refuses_altered_weights():
    m = _of_kind("restore")[0]
    info = models.model_info(m)
    from importlib import resources

    raw = bytearray((resources.files("napari_cnnjpeg") / "weights" / info.weights).read_bytes())
    assert models.load_weights(info, bytes(raw))
    raw[-5] ^= 0x40
    with pytest.raises(cj.CjpgError, match="SHA-256"):
        models.load_weights(info, bytes(raw))
    forged = dataclasses.replace(info, sha256="0" * 64)
    with pytest.raises(cj.CjpgError, match="SHA-256"):
        models.load_weights(forged)


def test_tiled_equals_untiled():
    img = data.coffee()[:300, :420].copy()
    jpeg = encode_jpeg(img, 15)
    from napari_cnnjpeg.format.jpeg import decode_jpeg
    from napari_cnnjpeg.nn.inference import run_network

    pixels = decode_jpeg(jpeg)
    stages = models.load_stages(_of_kind("restore")[0])
    luma, chroma = quant_tables(jpeg)
    whole = run_network(stages.decoder, pixels, luma, chroma, tile=1024)
    tiled = run_network(stages.decoder, pixels, luma, chroma, tile=96)
    assert psnr(img, np.clip(np.rint(whole), 0, 255).astype(np.uint8)) == pytest.approx(
        psnr(img, np.clip(np.rint(tiled), 0, 255).astype(np.uint8)), abs=0.05
    )
    assert np.abs(whole - tiled).max() < 1.0
    batched = run_network(stages.decoder, pixels, luma, chroma, tile=96, batch_pixels=10**8)  # as on a GPU
    assert np.abs(batched - tiled).max() < 1e-3


def test_tiles_cover_the_plane_once_within_the_area():
    """Every pixel is kept by exactly one tile, each keeps at most the area it is given, tiles of a
    row or column differ by at most the network's multiple, and each computes its overlaps."""
    from napari_cnnjpeg.nn.inference import OVERLAP, _tiles

    for H, W, area in ((3000, 4000, 1792**2), (4000, 6000, 1792**2), (300, 420, 96**2), (4, 4, 16),
                       (8, 100000, 1024**2), (2048, 2048, 1024**2), (604, 1208, 512**2)):
        kept = np.zeros((H, W), np.uint8)
        tiles = _tiles(H, W, area, 4)
        for y0, y1, x0, x1, ya, yb, xa, xb in tiles:
            assert (y1 - y0) * (x1 - x0) <= area and y0 % 4 == 0 and x0 % 4 == 0
            assert (ya, yb, xa, xb) == (max(0, y0 - OVERLAP), min(H, y1 + OVERLAP), max(0, x0 - OVERLAP), min(W, x1 + OVERLAP))
            kept[y0:y1, x0:x1] += 1
        assert (kept == 1).all(), (H, W, area)
        heights = {t[1] - t[0] for t in tiles}
        widths = {t[3] - t[2] for t in tiles}
        assert max(heights) - min(heights) <= 4 and max(widths) - min(widths) <= 4, (H, W, heights, widths)
    assert len(_tiles(3000, 4000, 1792**2, 4)) == 4  # a 12 MP photo: four equal tiles


def test_tuned_tables_are_written_and_read_back():
    from napari_cnnjpeg.format.jpeg import TUNED_TABLES, tables_for_quality

    rgb, gray = data.astronaut()[:64, :64], data.camera()[:64, :64]
    for q in (5, 30, 90):
        luma, chroma = tables_for_quality(q, TUNED_TABLES)
        got = quant_tables(encode_jpeg(rgb, q, tables=TUNED_TABLES))
        assert np.array_equal(got[0], luma) and np.array_equal(got[1], chroma)
        got_gray = quant_tables(encode_jpeg(gray, q, tables=TUNED_TABLES))
        assert np.array_equal(got_gray[0], luma) and got_gray[1] is None
        assert not np.array_equal(luma, tables_for_quality(q)[0])  # not libjpeg's own
    assert np.array_equal(quant_tables(encode_jpeg(rgb, 30))[0], tables_for_quality(30)[0])


def test_tuned_jpeg_beats_standard_tables_at_equal_rate(photo):
    """Plain JPEG with the PSNR-tuned tables: a lower BD-rate than libjpeg's tables, no network."""
    from napari_cnnjpeg.eval.bd import bd_rate
    from napari_cnnjpeg.eval.metrics import bpp

    curves = {}
    for m in ("jpeg", "jpeg-tuned"):
        blobs = [cj.encode(photo, quality=q, model=m) for q in (20, 35, 50, 65, 80)]
        curves[m] = ([bpp(len(b), photo.shape) for b in blobs], [psnr(photo, cj.decode(b)) for b in blobs])
    assert cj.info(cj.encode(photo, quality=50, model="jpeg-tuned"))["model"] == "jpeg-tuned"
    assert bd_rate(*curves["jpeg"], *curves["jpeg-tuned"]) < -5


def test_restore_reads_tuned_tables_from_the_stream(photo):
    from napari_cnnjpeg.format.jpeg import TUNED_TABLES, decode_jpeg

    jpg = encode_jpeg(photo, 30, tables=TUNED_TABLES)
    assert psnr(photo, cj.restore(jpg)) > psnr(photo, decode_jpeg(jpg)) + 0.3


@pytest.mark.parametrize("bad", [{"flatness": 0.2}, {"flatness": "a", "chroma_scale": 1}, [0.2, 0.4],
                                 {"flatness": 2, "chroma_scale": 0.4}, {"flatness": 0.2, "chroma_scale": float("nan")}])
def test_bad_table_tuning_is_a_clear_error(bad):
    from napari_cnnjpeg.format.jpeg import tables_for_quality

    with pytest.raises(cj.CjpgError, match="tuning"):
        tables_for_quality(30, bad)
    with pytest.raises(cj.CjpgError, match="tuning"):
        encode_jpeg(data.camera()[:16, :16], 30, tables=bad)


def test_retired_networked_model_is_refused(monkeypatch):
    reg = {**models.registry(), "gone": models.ModelInfo("gone", "retired joint", "joint", superseded_by="joint-s-v3")}
    monkeypatch.setattr(models, "registry", lambda: reg)
    with pytest.raises(cj.CjpgError, match="no longer installed.*model='jpeg'"):
        models.load_stages.__wrapped__("gone")


def test_restore_array_with_its_tables_matches_restoring_the_bytes(photo):
    from napari_cnnjpeg.format.jpeg import TUNED_TABLES, decode_jpeg

    jpg = encode_jpeg(photo, 30, tables=TUNED_TABLES)
    from_array = cj.restore(decode_jpeg(jpg), quality=30, tables=TUNED_TABLES)
    assert np.array_equal(from_array, cj.restore(jpg))


@pytest.mark.parametrize("gray", [False, True])
@pytest.mark.parametrize("runtime", ["onnxruntime", "nnpack"])
def test_cpu_runtimes_match_torch(monkeypatch, gray, runtime):
    """On the CPU, shipped models run under ONNX Runtime or NNPACK with the same output as torch
    (NNPACK on every tile here, small ones included), for 8-bit and 12-bit payloads."""
    from napari_cnnjpeg.nn import inference, nnpack_runtime

    if runtime == "onnxruntime":
        pytest.importorskip("onnxruntime")
    elif not inference.nnpack_available():
        pytest.skip("this torch has no NNPACK here")
    monkeypatch.setattr(nnpack_runtime, "MIN_PIXELS", 0)  # this small image through NNPACK, not its fallback
    deep = data.astronaut()[:200, :264, 1].astype(np.uint16) * 16
    monkeypatch.setenv("CNNJPEG_RUNTIME", "torch")
    deep_blob = cj.encode(deep, quality=70, mapping=(0, 4095))
    deep_ref = cj.decode(deep_blob)
    monkeypatch.setenv("CNNJPEG_RUNTIME", runtime)
    assert np.abs(cj.decode(deep_blob).astype(int) - deep_ref).max() <= 1  # 12-bit levels
    img = data.astronaut()[:200, :264].copy()
    img = img[..., 1].copy() if gray else img
    monkeypatch.setenv("CNNJPEG_RUNTIME", "torch")
    blob = cj.encode(img, quality=40)
    ref = cj.decode(blob)
    monkeypatch.setenv("CNNJPEG_RUNTIME", runtime)
    stages = models.load_stages(models.default_model())
    assert cj.encode(img, quality=40) == blob  # the encoder stage too
    assert np.abs(cj.decode(blob).astype(int) - ref).max() <= 1
    assert any(k[:2] == ("decoder", runtime) for k in stages._runners)
    monkeypatch.setenv("CNNJPEG_RUNTIME", "tensorrt")
    with pytest.raises(cj.CjpgError, match="CNNJPEG_RUNTIME"):
        cj.decode(blob)


def test_nnpack_forward_equals_the_module():
    """The NNPACK forward pass is the torch module's, to float rounding: a batch of two, odd sizes,
    down to the smallest plane a network takes (4x4); and so is it with the colour conversions folded in."""
    import torch

    from napari_cnnjpeg.nn import inference, nnpack_runtime
    from napari_cnnjpeg.nn.nets import rgb_to_ycc, ycc_to_rgb

    if not inference.nnpack_available():
        pytest.skip("this torch has no NNPACK here")
    net = models.load_stages(models.default_model()).decoder
    run = nnpack_runtime.NnpackNet(net)  # no small-tile runner: NNPACK runs every size
    for h, w in ((68, 92), (4, 4), (12, 20), (100, 4)):
        x, cond = torch.rand(2, 3, h, w), torch.rand(2, 129)
        with torch.inference_mode():
            ref = net(x, cond)
            rgb_ref = ycc_to_rgb(net(rgb_to_ycc(x * 255, 255), cond), 255)
        assert torch.allclose(run(x, cond), ref, atol=1e-5), (h, w)
        # the colour conversions folded into the first and last layers (one level in 0-255 is 4e-3 of it)
        assert torch.allclose(run.rgb(x * 255, cond, 255), rgb_ref, atol=1e-2), (h, w)


def test_auto_runtime_leaves_a_core_under_limit_threads(monkeypatch):
    """NNPACK's thread pool cannot shrink, so a worker that leaves a core to napari gets ONNX Runtime."""
    import torch

    from napari_cnnjpeg.nn import inference

    pytest.importorskip("onnxruntime")
    if not inference.nnpack_available():
        pytest.skip("this torch has no NNPACK here")
    monkeypatch.delenv("CNNJPEG_RUNTIME", raising=False)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    monkeypatch.setattr(inference, "avx512_cpu", lambda: False)
    net = models.load_stages(models.default_model()).decoder
    assert inference.choose_runtime(net, "cpu") == "nnpack"
    with inference.limit_threads(1):
        assert inference.choose_runtime(net, "cpu") == "onnxruntime"


def test_auto_runtime_is_onnxruntime_on_avx512_cpus(monkeypatch):
    """NNPACK's kernels stop at AVX2; where the CPU has AVX-512, ONNX Runtime's convolutions are faster."""
    import torch

    from napari_cnnjpeg.nn import inference

    pytest.importorskip("onnxruntime")
    monkeypatch.delenv("CNNJPEG_RUNTIME", raising=False)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    net = models.load_stages(models.default_model()).decoder
    monkeypatch.setattr(inference, "avx512_cpu", lambda: True)
    assert inference.choose_runtime(net, "cpu") == "onnxruntime"
    monkeypatch.setenv("CNNJPEG_RUNTIME", "nnpack")
    if inference.nnpack_available():
        assert inference.choose_runtime(net, "cpu") == "nnpack"  # asked for by name, it still runs


def test_every_shipped_architecture_has_a_graph():
    from napari_cnnjpeg.nn.inference import shipped_graph

    for mid in models.available_models():
        stages = models.load_stages(mid)
        for net in (stages.encoder, stages.decoder):
            if net is not None:
                assert shipped_graph(net) is not None, mid


def test_restore_model_is_chosen_for_the_device(monkeypatch):
    """An "l"-tier model is picked on a GPU only; on a CPU the best "s"-tier model; 12-bit JPEG
    gets a 12-bit model."""
    from napari_cnnjpeg.nn.models import ModelInfo

    zoo = {m.id: m for m in (
        ModelInfo("small", "", "restore", card={"kodak": {"bd_rate_psnr": -10.0}}),
        ModelInfo("smaller", "", "restore", card={"kodak": {"bd_rate_psnr": -12.0}}),
        ModelInfo("large", "", "restore", tier="l", card={"kodak": {"bd_rate_psnr": -20.0}}),
        ModelInfo("micro", "", "restore", bits=12),
        ModelInfo("joint", "", "joint"),
    )}
    monkeypatch.setattr(models, "registry", lambda: zoo)
    assert models.default_restore_model(device="cpu") == "smaller"
    assert models.default_restore_model(device="cuda") == "large"
    assert models.default_restore_model(device="cuda:1") == "large"
    assert models.default_restore_model(12, device="cuda") == "micro"
    zoo.pop("large")
    assert models.default_restore_model(device="cuda") == "smaller"  # no "l" tier installed


def test_a_zoo_entry_with_a_bad_tier_or_bits_is_refused(monkeypatch):
    base = {"id": "x", "description": "", "kind": "restore", "weights": "x.safetensors", "sha256": "0"}
    for bad in ({"tier": "xl"}, {"bits": 16}, {"identity_step": 1.0}, {"identity_step": {"4:2:0": -1}},
                {"identity_step": {"4:1:1": 2.0}}):
        monkeypatch.setattr(models, "_zoo_entries", lambda bad=bad: [{**base, **bad}])
        models.registry.cache_clear()
        with pytest.raises(cj.CjpgError, match="tier|bits|identity_step"):
            models.registry()
    models.registry.cache_clear()


def test_identity_step_returns_fine_jpegs_unchanged():
    """At or below a model's identity step (mean luma step, 8-bit units) for the stream's chroma layout
    the decoder passes its input through; other layouts are restored; an unknown layout gets the largest step."""
    import torch

    from napari_cnnjpeg.format.jpeg import (
        chroma_layout,
        decode_jpeg,
        decode_jpeg12,
        encode_jpeg12,
    )
    from napari_cnnjpeg.nn.models import ModelStages
    from napari_cnnjpeg.nn.nets import RestoreNet

    torch.manual_seed(0)
    net = RestoreNet(8, 8, 1).eval()
    torch.nn.init.normal_(net.tail.weight, std=0.05)
    stages = ModelStages(decoder=net, identity_step={"4:4:4": 2.0, "4:2:0": 0.0})
    img = data.astronaut()[:64, :64]
    for quality, sub, layout, unchanged in ((100, "4:4:4", "4:4:4", True), (50, "4:4:4", "4:4:4", False),
                                            (100, "4:2:0", "4:2:0", False), (100, "4:2:0", None, True)):
        blob = encode_jpeg(img, quality, sub)
        assert chroma_layout(blob) == sub
        plain = decode_jpeg(blob)
        out = stages.post(plain, *quant_tables(blob), rounded=True, layout=layout)
        assert np.array_equal(out, plain) == unchanged, (quality, sub, layout)
    assert chroma_layout(encode_jpeg(img[..., 0], 50)) == "grey" and chroma_layout(encode_jpeg(img, 50, "4:2:2")) == "4:2:2"
    twelve = ModelStages(decoder=net, bits=12, identity_step={"grey": 2.0})
    plane = (data.camera()[:64, :64].astype(np.uint16) * 16)
    fine = encode_jpeg12(plane, 90)  # 12-bit steps at q90 are under 1 in 8-bit units
    assert np.array_equal(twelve.post(decode_jpeg12(fine), *quant_tables(fine), rounded=True), decode_jpeg12(fine))
