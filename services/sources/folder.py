"""A directory the service may read (under its configured roots): each file below it, hidden ones
left out, is an item named by its path under the directory; mtime and size are its fingerprint."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from services.sources.definitions import FolderConfig, InvalidSource
from services.sources.kinds import Content, ItemUnavailable, Known, Listed, SourceUnavailable


def confined(path: str, roots: list[Path]) -> Path:
    """The folder, resolved (links followed), if it lies under one of ``roots``."""
    resolved = Path(path).resolve()
    if not any(resolved.is_relative_to(root.resolve()) for root in roots):
        allowed = ", ".join(str(r) for r in roots) or "none (INDEXFLOW_SOURCES_FOLDER_ROOTS is unset)"
        raise InvalidSource(f"{path} is not under a folder this server may read; allowed: {allowed}")
    return resolved


class FolderSource:
    def __init__(self, config: FolderConfig, roots: list[Path], max_bytes: int):
        self.root = confined(config.path, roots)
        self.max_bytes = max_bytes

    def listing(self, known: Mapping[str, Known]) -> Iterator[Listed]:
        if not self.root.is_dir():
            raise SourceUnavailable(f"{self.root} is not a readable directory")
        try:
            for directory, subdirectories, files in os.walk(self.root, onerror=_raise):
                subdirectories[:] = sorted(d for d in subdirectories if not d.startswith("."))
                for name in sorted(f for f in files if not f.startswith(".")):
                    path = Path(directory, name)
                    if not path.resolve().is_relative_to(self.root):  # a link out of the folder
                        continue
                    stat = path.stat()
                    relative = path.relative_to(self.root).as_posix()
                    yield Listed(relative, path.as_uri(), name, f"{stat.st_mtime_ns}:{stat.st_size}")
        except OSError as exc:
            raise SourceUnavailable(f"listing {self.root}: {exc}") from exc

    def fetch(self, item: Listed) -> Content:
        path = self.root / item.item_id
        try:
            size = path.stat().st_size
            if size > self.max_bytes:
                raise ItemUnavailable(f"{size:,} bytes, over the {self.max_bytes:,} byte item limit")
            return Content(name=item.name, data=path.read_bytes())
        except OSError as exc:
            raise ItemUnavailable(str(exc)) from exc


def _raise(error: OSError) -> None:
    raise error
