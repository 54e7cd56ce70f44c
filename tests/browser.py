"""Headless Chromium helpers for tests of HTML pages (report, demo).

Tests load a page from disk, take a screenshot, and ask the browser which images loaded. The
page itself has no scripts; for the image check a copy of it, with a small script appended, is
written beside it (so relative paths resolve the same) and removed afterwards.
"""

from __future__ import annotations

import html as html_lib
import json
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
_TIMEOUT_S = 90

_CHECK_SCRIPT = """<script>
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var broken = images.filter(function (im) { return !(im.complete && im.naturalWidth > 0); });
  var out = document.createElement("pre");
  out.id = "transfigure-image-check";
  out.textContent = JSON.stringify({
    total: images.length,
    loaded: images.length - broken.length,
    broken: broken.map(function (im) { return im.getAttribute("src"); }),
    srcs: images.map(function (im) { return im.getAttribute("src"); })
  });
  document.body.appendChild(out);
});
</script>"""


def find_chromium() -> str | None:
    """``$TRANSFIGURE_CHROMIUM``, or the first Chromium/Chrome on PATH (or /usr/bin)."""
    explicit = os.environ.get("TRANSFIGURE_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).is_file() else None
    for name in _NAMES:
        found = shutil.which(name) or (
            f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").is_file() else None
        )
        if found:
            return found
    return None


def require_chromium() -> str:
    """The browser's path; skips the calling test when none is installed."""
    path = find_chromium()
    if path is None:
        pytest.skip("headless Chromium not installed (Debian: apt-get install chromium)")
    return path


def _run(chromium: str, profile: Path, args: list[str]) -> subprocess.CompletedProcess:
    command = [
        chromium,
        "--headless",
        "--no-sandbox",  # tests may run as root in a container
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False)


def screenshot(
    chromium: str, page: Path, out_png: Path, profile: Path, *, size: tuple[int, int] = (1280, 1600)
) -> Path:
    """Render ``page`` from disk into ``out_png`` (a PNG of ``size``)."""
    result = _run(
        chromium,
        profile,
        [f"--screenshot={out_png}", f"--window-size={size[0]},{size[1]}", page.resolve().as_uri()],
    )
    if not out_png.is_file():
        raise AssertionError(
            f"chromium wrote no screenshot (exit {result.returncode}):\n{result.stderr[-2000:]}"
        )
    return out_png


def image_check(chromium: str, page: Path, profile: Path) -> dict:
    """Load ``page`` and report ``{"total", "loaded", "broken": [src...], "srcs": [...]}``.

    An image counts as loaded when the browser decoded it (``naturalWidth > 0``) by the time
    the window's load event fired (which waits for every image).
    """
    html = page.read_text(encoding="utf-8")
    if "</body>" not in html:
        raise AssertionError(f"{page}: no </body>")
    probe = page.with_name(f".image-check-{uuid.uuid4().hex}.html")
    probe.write_text(html.replace("</body>", _CHECK_SCRIPT + "</body>", 1), encoding="utf-8")
    try:
        result = _run(chromium, profile, ["--dump-dom", probe.resolve().as_uri()])
    finally:
        probe.unlink(missing_ok=True)
    match = re.search(r'<pre id="transfigure-image-check">(.*?)</pre>', result.stdout, re.S)
    if match is None:
        raise AssertionError(
            f"the image check did not run (exit {result.returncode}); "
            f"stderr:\n{result.stderr[-2000:]}"
        )
    return json.loads(html_lib.unescape(match.group(1)))


def is_blank(png: Path) -> bool:
    """True when a screenshot is (nearly) one flat colour."""
    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(png).convert("RGB"), dtype=np.float64)
    colours = len(np.unique(pixels.reshape(-1, 3)[::7], axis=0))
    return bool(pixels.std() < 5.0 or colours < 20)


def fresh_profile(tmp_path: Path) -> Path:
    """A throwaway browser profile folder (Chromium writes its state there, not in $HOME)."""
    profile = tmp_path / f"chromium-profile-{uuid.uuid4().hex[:8]}"
    profile.mkdir()
    return profile
