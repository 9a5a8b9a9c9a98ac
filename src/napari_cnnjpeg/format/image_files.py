"""Ordinary image files (PNG, TIFF, JPEG, ...) to arrays and back, for the CLI and batch jobs."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from ..errors import CjpgError

#: Suffixes of the image files that folders given to batch jobs contribute.
IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".webp")


def read_image(path: str | os.PathLike) -> np.ndarray:
    """A PNG/TIFF/JPEG/... file as an array (TIFF stacks keep every plane), turned as its EXIF
    orientation tells viewers to show it (a phone's portrait photo is stored sideways). An embedded
    ICC colour profile is not kept: a warning says so, as viewers then take the pixels as sRGB."""
    p = Path(path)
    try:
        if p.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            return tifffile.imread(p)
        from PIL import Image

        with Image.open(p) as im:
            if im.mode not in ("L", "RGB", "I;16", "I;16B", "I", "F"):
                if im.has_transparency_data and im.convert("RGBA").getextrema()[3][0] < 255:
                    raise CjpgError(f"{path} has transparent pixels, which JPEG cannot store: flatten it first")
                grey = im.mode in ("1", "L", "LA", "La") or (im.mode == "P" and _grey_palette(im))
                im = im.convert("L" if grey else "RGB")
            if im.info.get("icc_profile"):
                warnings.warn(f"{path}: its ICC colour profile is not kept (viewers take the stored pixels as "
                              "sRGB); convert the image to sRGB first where its colours matter", stacklevel=2)
            return exif_oriented(np.asarray(im), p)
    except FileNotFoundError:
        raise CjpgError(f"no such file: {path}") from None
    except CjpgError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure becomes one clear line
        raise CjpgError(f"cannot read image {path}: {exc}") from None


def _grey_palette(im) -> bool:
    rgb = np.asarray(im.convert("RGB"))
    return bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())


def exif_oriented(image: np.ndarray, path: str | os.PathLike) -> np.ndarray:
    """``image`` (the pixels of the JPEG file at ``path``, as stored) turned as its EXIF
    orientation tells viewers to show it, for image files written without EXIF."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            orientation = im.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 - no readable EXIF: shown as stored
        return image
    turn = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
            5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, -1), 7: lambda a: np.rot90(a, 2).swapaxes(0, 1),
            8: lambda a: np.rot90(a, 1)}.get(orientation)
    return image if turn is None else np.ascontiguousarray(turn(image))


def write_restored(path: str | os.PathLike, image: np.ndarray, jpeg_path: str | os.PathLike) -> None:
    """Write ``image``, restored from the JPEG file at ``jpeg_path``, as :func:`write_image` does: turned as
    its EXIF orientation tells viewers to show it, with its ICC profile where that describes ``image``'s
    colours (an RGB profile for RGB, a grey one for grey; not a CMYK file's)."""
    write_image(path, exif_oriented(image, jpeg_path), icc=_icc_profile(jpeg_path, image))


def _icc_profile(path: str | os.PathLike, image: np.ndarray) -> bytes | None:
    from PIL import Image

    try:
        with Image.open(path) as im:
            icc = im.info.get("icc_profile")
    except Exception:  # noqa: BLE001 - no readable profile: written without one
        return None
    space = b"RGB " if image.ndim == 3 else b"GRAY"  # the profile header's data colour space
    return icc if icc and icc[16:20] == space else None


def png_holds(shape: tuple[int, ...], dtype) -> bool:
    """Whether a PNG keeps an image of ``shape`` and ``dtype`` as it is: a 2D uint8 or uint16 plane, or uint8 RGB."""
    dtype = np.dtype(dtype)
    return (len(shape) == 2 and dtype in (np.uint8, np.uint16)) or (
        len(shape) == 3 and shape[-1] == 3 and dtype == np.uint8)


def write_image(path: str | os.PathLike, image: np.ndarray, icc: bytes | None = None) -> None:
    """Write PNG (2D uint8/uint16 gray or uint8 RGB) or TIFF (anything) atomically, with an ICC profile if given."""
    import io

    from .container import write_atomic

    suffix = Path(path).suffix.lower()
    buf = io.BytesIO()
    if suffix in (".tif", ".tiff"):
        import tifffile

        tifffile.imwrite(buf, image, iccprofile=icc)
    elif suffix == ".png":
        from PIL import Image

        if not png_holds(image.shape, image.dtype):
            raise CjpgError(f"PNG cannot hold {image.dtype} {image.shape}; write a .tif instead (--format tif)")
        Image.fromarray(image).save(buf, format="PNG", icc_profile=icc)
    else:
        raise CjpgError(f"unsupported output format {suffix!r}; use .png or .tif")
    write_atomic(path, buf.getvalue())
