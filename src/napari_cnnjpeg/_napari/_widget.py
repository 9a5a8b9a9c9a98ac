"""The plugin's dock widgets (npe2 ``widgets`` contributions).

- :class:`CompressWidget` (``_widget_compress``): compress a layer, see size/bpp/PSNR/SSIM, save ``.cjpg``;
- :class:`RestoreWidget` (``_widget_restore``): decoder-only restoration of ordinary JPEGs;
- :class:`CompareWidget` (``_widget_compare``): figures, error/SSIM maps, region figures, RD plot.

Each takes the viewer (injected by napari) and runs codec work in thread workers
(:mod:`napari_cnnjpeg._napari._workers`).
"""

from ._widget_compare import CompareWidget
from ._widget_compress import CompressWidget
from ._widget_restore import RestoreWidget

__all__ = ["CompareWidget", "CompressWidget", "RestoreWidget"]
