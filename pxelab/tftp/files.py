"""The data root shared by TFTP and HTTP: safe name resolution and a read cache.

A requested name is resolved inside the root and refused if it contains NUL,
a ``..`` component, is absolute (unless allowed: then it means root-relative,
like ``tftpd-hpa -s``) or resolves through a symlink to outside the root.
"""

from __future__ import annotations

import threading
from pathlib import Path, PurePosixPath

__all__ = ["DataRoot", "FileMissingError", "PathDeniedError"]


class PathDeniedError(ValueError):
    """The name is not allowed (traversal, absolute, NUL, symlink escape)."""


class FileMissingError(LookupError):
    """The name is allowed but no regular file is there."""


class DataRoot:
    """Resolve request names under ``root`` and serve file contents from a small cache."""

    def __init__(self, root: Path, *, allow_absolute: bool = False,
                 cache_bytes: int = 256 << 20) -> None:
        self.root = root.resolve()
        self.allow_absolute = allow_absolute
        self.cache_bytes = cache_bytes
        self._cache: dict[Path, tuple[tuple[int, int, int], bytes]] = {}
        self._lock = threading.Lock()

    def resolve(self, name: str) -> Path:
        """The file ``name`` refers to; raise PathDeniedError or FileMissingError."""
        if not name or "\x00" in name:
            raise PathDeniedError("empty name or NUL byte")
        if name.startswith("/"):
            if not self.allow_absolute:
                raise PathDeniedError(f"absolute path {name!r}")
            name = name.lstrip("/")
            if not name:
                raise PathDeniedError("name is only slashes")
        if ".." in PurePosixPath(name).parts:
            raise PathDeniedError(f"'..' component in {name!r}")
        try:
            real = (self.root / name).resolve()
        except (OSError, RuntimeError) as exc:  # symlink loop, name too long
            raise PathDeniedError(f"cannot resolve {name!r}: {exc}") from None
        if not real.is_relative_to(self.root):
            raise PathDeniedError(f"{name!r} resolves to {real}, outside {self.root}")
        if not real.is_file():
            raise FileMissingError(f"{name!r}: no regular file at {real}")
        return real

    def read(self, path: Path) -> bytes:
        """Contents of ``path``, read once and reused while its inode, size and mtime hold."""
        stat = path.stat()
        key = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        with self._lock:
            cached = self._cache.get(path)
            if cached is not None and cached[0] == key:
                return cached[1]
        data = path.read_bytes()
        if len(data) <= self.cache_bytes:
            with self._lock:
                self._cache[path] = (key, data)
                while sum(len(v[1]) for v in self._cache.values()) > self.cache_bytes:
                    self._cache.pop(next(iter(self._cache)))
        return data
