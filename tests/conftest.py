"""Shared fixtures of the napari plugin tests (tests/test_napari_*.py).

napari's own fixtures (``make_napari_viewer``, ``plugin_settings``, ``npe2pm``)
come from its pytest plugin. Run the napari tests under Xvfb:
``xvfb-run -a .venv/bin/pytest tests/test_napari_*.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

PLUGIN = "napari-cnnjpeg"


@pytest.fixture
def isolated_napari_settings(tmp_path, monkeypatch):
    """napari and plugin settings read from and written to this test's tmp_path only."""
    from napari import settings as napari_settings

    monkeypatch.setattr(napari_settings, "_CFG_PATH", str(tmp_path / "settings.yaml"))
    napari_settings._clear_plugin_settings_cache()
    yield
    napari_settings._clear_plugin_settings_cache()


@pytest.fixture
def notifications():
    """Notifications napari dispatches during the test (``show_error``, ``show_info``, errors)."""
    from napari.utils.notifications import notification_manager

    seen = []
    notification_manager.notification_ready.connect(seen.append)
    yield seen
    notification_manager.notification_ready.disconnect(seen.append)
    seen.clear()


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """A 128x160 RGB crop of scikit-image's astronaut."""
    from skimage.data import astronaut

    return np.ascontiguousarray(astronaut()[40:168, 160:320])


@pytest.fixture(scope="session")
def stack16() -> np.ndarray:
    """A smooth 16-bit (5, 48, 64) stack with a different pattern in every plane."""
    z, y, x = np.mgrid[0:5, 0:48, 0:64].astype(np.float64)
    data = 20000 + 15000 * np.sin(x / 7 + z) * np.cos(y / 9 - z / 2) + 300 * z
    return data.astype(np.uint16)


@pytest.fixture
def dock():
    """Dock one of the plugin's widgets in a viewer: ``dock(viewer, "Compress")`` -> widget."""

    def _dock(viewer, name: str):
        _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name)
        return widget

    return _dock


@pytest.fixture
def wait_idle(qtbot):
    """``wait_idle(*widgets)``: wait until no background job of the widgets runs."""

    def _wait(*widgets, timeout: int = 60000) -> None:
        def idle():
            for w in widgets:
                for job in [v for v in vars(w).values() if type(v).__name__ == "Job"]:
                    assert job.worker is None

        qtbot.waitUntil(idle, timeout=timeout)

    return _wait
