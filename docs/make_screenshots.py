"""Make the screenshots of docs/napari.md: the viewer with each napari-cnnjpeg widget docked.

Run headless under Xvfb from the repository root::

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/make_screenshots.py

Writes docs/screenshots/{sample,compress,restore,compare,stack,settings}.png (each kept under
300 KB by reducing it to a 256-colour palette).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "screenshots"
SIZE = (1400, 860)
PLUGIN = "napari-cnnjpeg"


def settle(viewer, ms: int = 400) -> None:
    from qtpy.QtCore import QCoreApplication, QElapsedTimer

    timer = QElapsedTimer()
    timer.start()
    while timer.elapsed() < ms:
        QCoreApplication.processEvents()


def wait(widget, ms: int = 120000) -> None:
    """Let a widget's background jobs finish."""
    from qtpy.QtCore import QCoreApplication, QElapsedTimer

    jobs = [v for v in vars(widget).values() if type(v).__name__ == "Job"]
    timer = QElapsedTimer()
    timer.start()
    while any(j.running for j in jobs) and timer.elapsed() < ms:
        QCoreApplication.processEvents()
    settle(widget, 300)


def save(viewer, name: str) -> Path:
    from PIL import Image

    settle(viewer, 500)
    shot = viewer.screenshot(canvas_only=False, flash=False)
    image = Image.fromarray(np.asarray(shot)[..., :3])
    path = OUT / f"{name}.png"
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        path, optimize=True
    )
    if path.stat().st_size > 300_000:  # halve the size if the palette alone was not enough
        image = image.resize((image.width * 3 // 4, image.height * 3 // 4), Image.Resampling.LANCZOS)
        image.quantize(colors=192, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
            path, optimize=True
        )
    print(f"{path.relative_to(OUT.parent.parent)}: {path.stat().st_size / 1024:.0f} KiB")
    return path


def new_viewer():
    import napari

    viewer = napari.Viewer(show=True, title="napari-cnnjpeg")
    viewer.window._qt_window.resize(*SIZE)
    settle(viewer)
    return viewer


def dock(viewer, name: str):
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name)
    settle(viewer)
    return widget


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="cnnjpeg-shots-"))
    os.environ.setdefault("NAPARI_CONFIG", str(tmp / "napari-settings.yaml"))  # defaults, not the user's
    import napari_cnnjpeg as cj

    OUT.mkdir(exist_ok=True)

    # 1. sample data: original, plain JPEG and the default model at the same low rate
    viewer = new_viewer()
    viewer.open_sample(PLUGIN, "astronaut_low_rate")
    viewer.canvas.grid.enabled = True
    viewer.reset_view()
    save(viewer, "sample")
    viewer.close()

    # 2. Compress: a quality-20 result of the astronaut, figures in the dock
    viewer = new_viewer()
    from skimage.data import astronaut

    photo = astronaut()
    viewer.add_image(photo, name="astronaut", rgb=True)
    w = dock(viewer, "Compress")
    w.auto.value = False
    w.quality.value = 20
    w.run()
    wait(w)
    w.auto.value = True
    viewer.layers["astronaut"].visible = False
    save(viewer, "compress")
    viewer.close()

    # 3. Restore JPEG on a layer opened from a plain-JPEG .cjpg (quality read from its metadata)
    viewer = new_viewer()
    path = tmp / "astronaut_q15.cjpg"
    cj.imwrite(path, photo, quality=15, model="jpeg")
    viewer.open(path, plugin=PLUGIN)
    w = dock(viewer, "Restore JPEG")
    if w.model.value:
        w.run()
        wait(w)
    save(viewer, "restore")
    viewer.close()

    # 4. Compare layers: error map, a region and the rate-distortion plot
    viewer = new_viewer()
    ref = viewer.add_image(photo, name="astronaut", rgb=True)
    data = cj.encode(photo, quality=20)
    test = viewer.add_image(cj.decode(data), name="default model q20", rgb=True, metadata={
        "model": cj.default_model(), "quality": 20, "bpp": cj.info(data)["bpp"]})
    w = dock(viewer, "Compare layers")
    w.reference.value, w.test.value = ref, test
    w.run()
    wait(w)
    viewer.layers["SSIM map"].visible = False
    roi = viewer.add_shapes([[[60, 180], [60, 330], [210, 330], [210, 180]]], shape_type="rectangle",
                            name="region", edge_color="cyan", face_color="transparent", edge_width=3)
    w.region.value = roi
    settle(viewer, 600)
    wait(w)
    w.plot_rd()
    wait(w)
    viewer.layers.selection.active = roi
    save(viewer, "compare")
    viewer.close()

    # 5. A 16-bit stack saved from napari and re-opened lazily, metadata kept
    viewer = new_viewer()
    z, y, x = np.mgrid[0:40, 0:256, 0:256].astype(np.float32)
    stack = (20000 + 15000 * np.sin(x / 17 + z / 5) * np.cos(y / 23 - z / 7)).astype(np.uint16)
    layer = viewer.add_image(stack, name="synthetic stack", scale=(2.0, 0.5, 0.5), axis_labels=("z", "y", "x"),
                             colormap="magma", contrast_limits=(8000, 34000))
    layer.save(str(tmp / "stack.cjpg"), plugin=PLUGIN)
    viewer.layers.clear()
    viewer.open(tmp / "stack.cjpg", plugin=PLUGIN)
    viewer.reset_view()
    viewer.dims.set_current_step(0, 12)
    w = dock(viewer, "Compress")
    w.auto.value = False
    w.quality.value = 50
    w.run()
    wait(w)
    w.auto.value = True
    save(viewer, "stack")

    # 6. the plugin's page in File > Preferences
    from napari._qt.dialogs.preferences_dialog import PreferencesDialog
    from PIL import Image

    dialog = PreferencesDialog(viewer.window._qt_window)
    names = [dialog._list.item(i).text() for i in range(dialog._list.count())]
    dialog._list.setCurrentRow(names.index("CNN-JPEG"))
    dialog.resize(820, 360)
    dialog.show()
    settle(viewer, 500)
    grab = dialog.grab()
    grab.save(str(OUT / "settings.png"))
    Image.open(OUT / "settings.png").convert("RGB").quantize(colors=64).save(OUT / "settings.png", optimize=True)
    print(f"docs/screenshots/settings.png: {(OUT / 'settings.png').stat().st_size / 1024:.0f} KiB")
    dialog.close()
    viewer.close()


if __name__ == "__main__":
    sys.exit(main())
