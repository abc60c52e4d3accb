"""The lifecycle every lab part shares: start(), stop(), and a with-block around them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self


class Resource(ABC):
    """A part that is started and stopped; as a context manager, stop() runs on any exit.

    start() must clean up after itself when it fails halfway, because a
    with-block whose __enter__ raised never calls __exit__. stop() must be safe
    to call twice.
    """

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def stop(self) -> None: ...

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
