"""The data root shared by TFTP and HTTP: safe name resolution and a read cache.

A requested name is resolved inside the root and refused if it contains NUL,
a ``..`` component, is absolute (unless allowed: then it means root-relative,
like ``tftpd-hpa -s``), is absurdly long, or resolves through a symlink to
outside the root. :meth:`DataRoot.load` checks the opened descriptor again, so
a symlink swapped in between the check and the open is refused too.
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path, PurePosixPath

__all__ = ["MAX_NAME", "DataRoot", "FileMissingError", "PathDeniedError"]

MAX_NAME = 1024  # characters; PATH_MAX is 4096, and no boot file name comes near this


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
        if len(name) > MAX_NAME:
            raise PathDeniedError(f"name of {len(name)} characters is over {MAX_NAME}")
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
        try:
            regular = real.is_file()
        except OSError as exc:  # ENAMETOOLONG, EACCES on a directory on the way
            raise PathDeniedError(f"cannot look at {name!r}: {exc.strerror}") from None
        if not regular:
            raise FileMissingError(f"{name!r}: no regular file at {real}")
        return real

    def load(self, name: str) -> bytes:
        """The contents of the file ``name`` refers to (resolved and checked as it is opened).

        Raises PathDeniedError, FileMissingError, or OSError if reading fails.
        """
        return self.read(self.resolve(name))

    def read(self, path: Path) -> bytes:
        """Contents of ``path``, read once and reused while its inode, size and mtime hold.

        The file is opened without following a final symlink and the descriptor
        itself must be a regular file inside the root (its /proc/self/fd link).
        """
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        except FileNotFoundError:
            raise FileMissingError(f"{path} vanished") from None
        except OSError as exc:  # ELOOP: a symlink was swapped in; EACCES
            raise PathDeniedError(f"cannot open {path}: {exc.strerror}") from None
        with os.fdopen(fd, "rb", buffering=0) as file:
            info = os.fstat(fd)
            real = Path(os.readlink(f"/proc/self/fd/{fd}"))
            if not real.is_relative_to(self.root):
                raise PathDeniedError(f"{path} opened as {real}, outside {self.root}")
            if not stat.S_ISREG(info.st_mode):
                raise FileMissingError(f"{path} is not a regular file")
            key = (info.st_ino, info.st_size, info.st_mtime_ns)
            with self._lock:
                cached = self._cache.get(path)
                if cached is not None and cached[0] == key:
                    return cached[1]
            os.set_blocking(fd, True)
            data = file.read()
        if len(data) <= self.cache_bytes:
            with self._lock:
                self._cache[path] = (key, data)
                while sum(len(v[1]) for v in self._cache.values()) > self.cache_bytes:
                    self._cache.pop(next(iter(self._cache)))
        return data
