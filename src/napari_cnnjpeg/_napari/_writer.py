"""napari writer: image layers to ``.cjpg`` (npe2 ``writers`` contribution, lossy).

Uses the model and quality of the plugin settings (data of more than 8 bits: 12-bit
JPEG, unless the settings name a model); the layer's name, scale, translate,
rotate, shear, affine, axis labels, units, contrast limits, colormap, blending,
opacity and gamma are stored in the file and restored by the reader. RGBA layers
are stored as four grey planes and reopen as RGBA; layers with other channel
counts are stacks of grey planes.
"""

from __future__ import annotations

from typing import Any

from ..errors import CjpgError


def _as_list(value) -> list | None:
    if value is None:
        return None
    return [v.item() if hasattr(v, "item") else v for v in value]


def layer_image_metadata(attributes: dict) -> dict:
    """The layer state a ``.cjpg`` keeps (``metadata=`` of :func:`napari_cnnjpeg.encode`)."""
    meta: dict[str, Any] = {}
    if attributes.get("name"):
        meta["name"] = str(attributes["name"])
    for key in ("scale", "translate"):
        value = _as_list(attributes.get(key))
        if value is not None:
            meta[key] = [float(v) for v in value]
    if attributes.get("axis_labels") is not None:
        meta["axis_labels"] = [str(a) for a in attributes["axis_labels"]]
    if attributes.get("units") is not None:
        meta["units"] = [str(u) for u in attributes["units"]]
    if attributes.get("contrast_limits") is not None and not attributes.get("rgb"):
        lo, hi = _as_list(attributes["contrast_limits"])
        meta["contrast_limits"] = [float(lo), float(hi)]
    cmap = attributes.get("colormap")
    name = cmap.get("name") if isinstance(cmap, dict) else getattr(cmap, "name", cmap)
    if isinstance(name, str) and not attributes.get("rgb"):
        try:
            from napari.utils.colormaps import AVAILABLE_COLORMAPS

            if name in AVAILABLE_COLORMAPS:
                meta["colormap"] = name
        except ImportError:
            meta["colormap"] = name
    from ._workers import layer_transforms

    meta.update(layer_transforms(attributes))  # rotate, shear, affine where not the identity
    for key, default in DISPLAY_DEFAULTS.items():  # how the layer is drawn, where not napari's default
        value = attributes.get(key)
        value = getattr(value, "value", value)  # napari's Blending enum
        if value is not None and value != default:
            meta[key] = str(value) if key == "blending" else float(value)
    return meta


#: napari's defaults for how an image layer is drawn; a file stores the others (``image`` metadata).
DISPLAY_DEFAULTS = {"blending": "translucent", "opacity": 1.0, "gamma": 1.0}


def write_image(path: str, data: Any, attributes: dict) -> list[str]:
    """Write one image layer to ``path`` (a ``.cjpg`` file); returns ``[path]``.

    A :class:`CjpgError` is also shown as a napari notification: napari reports a
    writer's ValueError only as "not a valid writer", without its message.
    """
    try:
        return _write_image(path, data, attributes)
    except CjpgError as exc:
        try:
            from napari.utils.notifications import show_error

            show_error(f"napari-cnnjpeg could not save {path}: {exc}")
        except ImportError:
            pass
        raise


def _write_image(path: str, data: Any, attributes: dict) -> list[str]:
    import numpy as np

    from .. import codec
    from ._workers import apply_runtime_settings, default_model_id, get_settings, level0_hint

    if attributes.get("multiscale"):
        raise CjpgError(f"multiscale (pyramid) layers cannot be saved as .cjpg; "
                        f"{level0_hint(attributes.get('name', 'name'))}, then save that layer")
    rgb = bool(attributes.get("rgb", False))
    from ._reader import ChannelsLast, ProgressiveStack

    if isinstance(data, (ProgressiveStack, ChannelsLast)):  # a reopened .cjpg stack: restored planes, not previews
        data = data.exact
    image = data if hasattr(data, "shape") and hasattr(data, "dtype") else np.asarray(data)  # dask stays lazy
    metadata = layer_image_metadata(attributes)
    if rgb and image.shape[-1] == 4:  # RGBA: four grey planes (..., 4, Y, X); the reader puts them back
        image, rgb = np.moveaxis(image, -1, -3), False
        metadata["rgba"] = True
    elif rgb and image.shape[-1] != 3:
        raise CjpgError(f"an RGB layer needs 3 or 4 channels, this one has {image.shape[-1]}")
    settings = get_settings()
    # data of more than 8 bits: 12-bit JPEG (encode's default) unless the settings name a model
    scientific = np.dtype(image.dtype) != np.uint8 and not settings.default_model
    model = None if scientific else default_model_id(settings)
    apply_runtime_settings(model, settings)
    codec.imwrite(path, image, quality=settings.quality, model=model, rgb=rgb, metadata=metadata)
    return [path]
