"""Sample data: the astronaut photograph, plain JPEG vs the default model at the same low bit rate;
a 16-bit microscopy image, 12-bit JPEG vs the 8-bit path at the same bit rate."""

from __future__ import annotations

#: Quality of the default model's file; plain JPEG is matched to its bits per pixel.
MODEL_QUALITY = 30


def _decoded(image, quality: int, model: str):
    from .. import codec
    from ..eval import metrics

    data = codec.encode(image, quality=quality, model=model)
    out = codec.decode(data)
    return out, {
        "model": model, "quality": quality, "bytes": len(data), "bpp": metrics.bpp(len(data), image.shape),
        "psnr": metrics.psnr(image, out), "ssim": float(metrics.ssim(image, out)),
    }


def make_sample_data():
    """Original astronaut, plain JPEG and the default model, both at about the same bits per pixel."""
    from skimage.data import astronaut

    from ._workers import apply_runtime_settings, default_model_id

    image = astronaut()
    model = default_model_id()
    apply_runtime_settings(model)
    layers = [(image, {"name": "astronaut (original)", "rgb": True}, "image")]
    if model == "jpeg":
        out, meta = _decoded(image, MODEL_QUALITY, "jpeg")
        meta["note"] = "no trained model is installed: the default model is plain JPEG"
        layers.append((out, {"name": f"JPEG q{MODEL_QUALITY}, {meta['bpp']:.2f} bpp", "rgb": True,
                             "metadata": meta}, "image"))
        return layers
    model_out, model_meta = _decoded(image, MODEL_QUALITY, model)
    from ..eval.demo import jpeg_at_bpp

    q, _ = jpeg_at_bpp(image, model_meta["bpp"])
    jpeg_out, jpeg_meta = _decoded(image, q, "jpeg")
    layers.append((jpeg_out, {"name": f"JPEG q{q}, {jpeg_meta['bpp']:.2f} bpp", "rgb": True,
                              "metadata": jpeg_meta}, "image"))
    layers.append((model_out, {"name": f"{model} q{MODEL_QUALITY}, {model_meta['bpp']:.2f} bpp", "rgb": True,
                               "metadata": model_meta}, "image"))
    return layers


#: Quality of the microscopy sample's 12-bit JPEG; the 8-bit path is matched to its bits per pixel.
MICRO_QUALITY = 60


def micro_image():
    """The shipped 16-bit fluorescence image (NEUBIAS, CC-BY-4.0: see ``samples/ATTRIBUTION.md``)."""
    from importlib import resources

    import tifffile

    with resources.as_file(resources.files(__package__) / "samples" / "bacteria_cords.tif") as path:
        return tifffile.imread(path)


def make_micro_sample_data():
    """Original 16-bit fluorescence, its 12-bit JPEG decoded by the default model for 12-bit payloads, and
    the 8-bit path (plain JPEG) at about the same bits per pixel."""
    from .. import codec
    from ..eval import metrics
    from ..eval.demo import jpeg_at_bpp
    from ..nn.models import default_model

    image = micro_image()
    rng = metrics.value_range(image)
    limits = [float(image.min()), float(image.max())]

    def layer(bits: int, quality: int, model: str = "jpeg"):
        data = codec.encode(image, quality=quality, model=model, bits=bits)
        out = codec.decode(data)
        meta = {"model": model, "bits": bits, "quality": quality, "bytes": len(data),
                "bpp": metrics.bpp(len(data), image.shape), "psnr": metrics.psnr(image, out, rng)}
        name = f"{bits}-bit {'JPEG' if model == 'jpeg' else model} q{quality}, {meta['bpp']:.2f} bpp, " \
               f"{meta['psnr']:.1f} dB"
        return out, {"name": name, "metadata": meta, "contrast_limits": limits, "colormap": "gray"}, "image"

    twelve = layer(12, MICRO_QUALITY, default_model(12))
    quality, _ = jpeg_at_bpp(image, twelve[1]["metadata"]["bpp"], bits=8)
    original = (image, {"name": "bacteria cords (16-bit original, NEUBIAS CC-BY-4.0)", "contrast_limits": limits,
                        "colormap": "gray"}, "image")
    return [original, layer(8, quality), twelve]
