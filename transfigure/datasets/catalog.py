"""The reference CycleGAN datasets: names, URLs, and a safe, resumable download.

The reference implementation (pytorch-CycleGAN-and-pix2pix,
``datasets/download_cyclegan_dataset.sh``) fetches ``<base>/<NAME>.zip`` from the Berkeley
server and unzips it into ``./datasets``; each archive holds one folder ``NAME/`` with
``trainA``, ``trainB``, ``testA``, ``testB``. We use the same URLs, with the base overridable by
``$TRANSFIGURE_DATASETS_URL`` (a mirror, or a local server in tests), and extract with
:func:`transfigure.download.safe_extract`.

The pix2pix reference's aligned datasets (``datasets/download_pix2pix_dataset.sh``:
``<base>/<NAME>.tar.gz`` on its ``pix2pix/datasets`` server, base overridable by
``$TRANSFIGURE_PIX2PIX_DATASETS_URL``) are in the same catalog; each holds ``train/``, ``val/``
(and for some ``test/``) folders of A|B images side by side. The three whose names the CycleGAN
datasets already use carry a ``_pix2pix`` suffix.
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from transfigure.download import DownloadError, cache_dir, download, safe_extract
from transfigure.events import Event

__all__ = [
    "DATASETS",
    "DATASETS_URL_ENV",
    "DEFAULT_DATASETS_URL",
    "UnknownDatasetError",
    "dataset_url",
    "download_dataset",
    "list_datasets",
]

# The reference script's current host. (Older copies of the script point at
# https://people.eecs.berkeley.edu/~taesung_park/CycleGAN/datasets, the same files' former home.)
DEFAULT_DATASETS_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets"
DATASETS_URL_ENV = "TRANSFIGURE_DATASETS_URL"
DEFAULT_PIX2PIX_DATASETS_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets"
PIX2PIX_DATASETS_URL_ENV = "TRANSFIGURE_PIX2PIX_DATASETS_URL"

# Marker written inside a dataset folder once it is completely extracted.
_COMPLETE_MARKER = ".transfigure-dataset.json"

DATASETS: dict[str, str] = {
    "apple2orange": "apples <-> oranges (ImageNet)",
    "summer2winter_yosemite": "Yosemite in summer <-> in winter (Flickr)",
    "horse2zebra": "horses <-> zebras (ImageNet)",
    "monet2photo": "Monet paintings <-> landscape photos",
    "cezanne2photo": "Cezanne paintings <-> landscape photos",
    "ukiyoe2photo": "Ukiyo-e prints <-> landscape photos",
    "vangogh2photo": "Van Gogh paintings <-> landscape photos",
    "maps": "aerial photos <-> Google Maps (New York area)",
    "cityscapes": "street scenes <-> semantic label maps (licence: may not be served)",
    "facades": "building facades <-> architectural labels (CMP Facades)",
    "iphone2dslr_flower": "flower photos: iPhone <-> DSLR with shallow depth of field",
    "ae_photos": "photos for trying the painting-style models (test set only)",
    "grumpifycat": "Russian Blue cats <-> Grumpy Cat (from the CUT paper)",
    "mini": "a handful of unpaired images, for smoke tests",
    "mini_pix2pix": "a handful of paired images, for smoke tests",
    # the pix2pix reference's aligned datasets (A|B side by side)
    "facades_pix2pix": "pix2pix: facade label maps | photos (CMP Facades; 400 pairs)",
    "cityscapes_pix2pix": "pix2pix: street photos | label maps (Cityscapes; 2975 pairs)",
    "maps_pix2pix": "pix2pix: aerial photos | Google Maps tiles (1096 pairs)",
    "edges2shoes": "pix2pix: edge maps | shoe photos (UT Zappos50K; ~50k pairs)",
    "edges2handbags": "pix2pix: edge maps | handbag photos (iGAN; ~137k pairs)",
    "night2day": "pix2pix: night | day photos of the same webcam views (~17k pairs)",
}

#: Catalog names of the pix2pix datasets → the reference's archive names.
PIX2PIX_DATASETS: dict[str, str] = {
    "facades_pix2pix": "facades",
    "cityscapes_pix2pix": "cityscapes",
    "maps_pix2pix": "maps",
    "edges2shoes": "edges2shoes",
    "edges2handbags": "edges2handbags",
    "night2day": "night2day",
}


class UnknownDatasetError(ValueError):
    """The dataset name is not in the catalog; the message suggests close names."""


def list_datasets() -> list[str]:
    """The dataset names, in catalog order."""
    return list(DATASETS)


def _check_name(name: str) -> None:
    if name in DATASETS:
        return
    close = difflib.get_close_matches(name, DATASETS, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    raise UnknownDatasetError(f"unknown dataset {name!r}{hint} (available: {', '.join(DATASETS)})")


def dataset_url(name: str) -> str:
    """The archive URL for ``name``: ``<base>/<name>.zip``.

    The base is ``$TRANSFIGURE_DATASETS_URL`` when set, else :data:`DEFAULT_DATASETS_URL`. A
    pix2pix dataset is ``<pix2pix base>/<reference name>.tar.gz`` (``$TRANSFIGURE_PIX2PIX_
    DATASETS_URL``, else :data:`DEFAULT_PIX2PIX_DATASETS_URL`).

    Raises:
        UnknownDatasetError: ``name`` is not in the catalog.
    """
    _check_name(name)
    if name in PIX2PIX_DATASETS:
        base = os.environ.get(PIX2PIX_DATASETS_URL_ENV) or DEFAULT_PIX2PIX_DATASETS_URL
        return f"{base.rstrip('/')}/{PIX2PIX_DATASETS[name]}.tar.gz"
    base = os.environ.get(DATASETS_URL_ENV) or DEFAULT_DATASETS_URL
    return f"{base.rstrip('/')}/{name}.zip"


def _is_complete(folder: Path) -> bool:
    return (folder / _COMPLETE_MARKER).is_file()


def _has_content(folder: Path) -> bool:
    return folder.is_dir() and any(folder.iterdir())


def download_dataset(
    name: str,
    root: str | os.PathLike[str],
    *,
    callback: Callable[[Event], None] | None = None,
    sha256: str | None = None,
    keep_archive: bool = False,
) -> Path:
    """Download a reference dataset and extract it to ``root/name``.

    The zip goes to ``cache_dir()/datasets/`` (resumed if an earlier attempt was interrupted),
    is checked entry by entry while extracting, and is moved into place only when complete. A
    folder that an earlier call completed is returned at once without touching the network.

    Args:
        name: a catalog name (:func:`list_datasets`).
        root: the folder that receives ``name/`` (created if missing).
        callback: receives download progress events (unit ``"B"``) and an extraction message.
        sha256: expected checksum of the zip, if known.
        keep_archive: keep the zip in the cache after extracting (removed by default: the
            datasets are hundreds of megabytes).

    Returns:
        ``root/name`` — holding ``trainA``, ``trainB``, ``testA``, ``testB`` for the unpaired sets,
        ``train``, ``val`` (, ``test``) for the pix2pix ones.

    Raises:
        UnknownDatasetError: ``name`` is not in the catalog.
        DownloadError: the download or extraction failed, or ``root/name`` already exists with
            other content (never overwritten).
    """
    url = dataset_url(name)
    root = Path(root)
    target = root / name
    if _is_complete(target):
        return target
    if _has_content(target):
        raise DownloadError(
            f"{target} already exists and was not downloaded here; remove it or choose "
            f"another root folder"
        )

    suffix = ".tar.gz" if url.endswith(".tar.gz") else ".zip"
    archive = cache_dir() / "datasets" / f"{name}{suffix}"
    download(url, archive, sha256=sha256, callback=callback)

    if callback is not None:
        callback(Event(task=f"extract {name}", message=f"extracting {archive.name} to {target}"))
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.staging-", dir=root))
    try:
        try:
            files = safe_extract(archive, staging / "x")
        except DownloadError:
            # A damaged archive would be reused forever from the cache: drop it.
            archive.unlink(missing_ok=True)
            raise
        extracted = staging / "x"
        # The reference archives hold one folder NAME/; accept a flat archive too.
        entries = [p for p in extracted.iterdir() if p.name != "__MACOSX"]
        source = entries[0] if len(entries) == 1 and entries[0].is_dir() else extracted
        (source / _COMPLETE_MARKER).write_text(
            json.dumps({"name": name, "url": url, "files": len(files)}, indent=2) + "\n",
            encoding="utf-8",
        )
        if target.exists():
            target.rmdir()  # empty (checked above)
        os.replace(source, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if not keep_archive:
        archive.unlink(missing_ok=True)
    if callback is not None:
        callback(Event(task=f"extract {name}", message=f"{len(files)} files in {target}"))
    return target
