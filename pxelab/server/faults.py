"""Fault injection: handed to the boot server beside its policy, carried out by the protocols.

The :class:`~pxelab.server.bootserver.BootServer` takes :class:`Fault` values
(frozen data; a scenario's ``faults``, a lab file's ``[[fault]]`` tables) beside
its :class:`~pxelab.server.policy.BootPolicy`, which makes the per-client
decisions and knows nothing of faults. It turns them into one
:class:`FaultInjector`, which every protocol consults at fixed points:

- ``packet(kind, client)`` before a packet of ``kind`` is handled (requests)
  or sent (replies): pass, drop, or delay it. Kinds are ``"<source>.<message>"``
  in lower case, e.g. ``dhcp4.discover``, ``dhcp4.offer``, ``dhcp6.advertise``,
  ``tftp.rrq``, ``tftp.oack``, ``tftp.data``, ``http.request``, ``ra.advert``.
  TFTP also passes the file name (``file=``), so a drop or delay can be limited
  to one file with a glob ("every RRQ for ldlinux.c32").
- ``withhold(client)`` before a DHCP server answers: a reason to stay silent.
- ``tftp(filename, client)`` when a read request is accepted: OACK trouble,
  a false tsize, a truncated file.
- ``http_status(path, client)`` before a file is served: an error status.
- ``reply_options(kind, client)`` when a DHCP reply is built: options to
  omit or add (:class:`OmitOption`, :class:`AddOption`).

Data-root faults (:class:`RemoveFile`, :class:`ReplaceFile`, :class:`StripSignature`)
are not carried out by a server: :func:`pxelab.scenarios.dataroot.apply_file_faults`
edits the data root after it is filled, before the servers start.

Every fault that fires is an event (source ``fault``, kind ``injected``) naming
the fault, so a test and a person see why the boot failed. Counters are per
injector, so the Nth packet means the Nth one this server handled.
"""

from __future__ import annotations

import fnmatch
import logging
import threading
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PurePosixPath

from pxelab.core.errors import ConfigError
from pxelab.core.events import EventLog
from pxelab.server.match import ClientInfo, Match

__all__ = [
    "AddOption",
    "DelayPacket",
    "DropPacket",
    "Fault",
    "FaultInjector",
    "HttpError",
    "LieTsize",
    "OackFault",
    "OackMode",
    "OmitOption",
    "RemoveFile",
    "ReplaceFile",
    "ReplyEdits",
    "StripSignature",
    "TftpFaults",
    "TruncateFile",
    "Verdict",
    "WithholdOffers",
]

log = logging.getLogger(__name__)


class OackMode(StrEnum):
    """What goes wrong with the TFTP option acknowledgement (RFC 2347)."""

    REFUSE = "refuse"  # ERROR 8 "option negotiation refused" instead of an OACK
    CORRUPT = "corrupt"  # an OACK whose option list is not NUL-terminated pairs
    ADD_OPTION = "add-option"  # an OACK with an option the client did not ask for
    IGNORE = "ignore"  # no OACK at all: DATA 1 at 512 bytes, as an RFC 1350 server


@dataclass(frozen=True)
class Fault:
    """Base of every fault; ``describe()`` is the text events and `pxelab faults` show."""

    def describe(self) -> str:
        raise NotImplementedError


def _check_nth(nth: int, count: int) -> None:
    if nth < 1:
        raise ConfigError(f"fault nth={nth}: packets are counted from 1; use nth=1 or more")
    if count < 0:
        raise ConfigError(f"fault count={count}: use 0 for 'every packet from nth on', "
                          "or a positive number")


@dataclass(frozen=True)
class DropPacket(Fault):
    """Drop packets ``nth`` .. ``nth+count-1`` of ``kind`` (count 0: all from ``nth``).

    ``file``: only packets about files matching this glob (TFTP), counted among
    themselves: ``DropPacket("tftp.rrq", count=0, file="ldlinux.c32")`` drops every
    RRQ for ldlinux.c32 and no other.
    """

    kind: str
    nth: int = 1
    count: int = 1
    match: Match | None = None
    file: str | None = None

    def __post_init__(self) -> None:
        _check_nth(self.nth, self.count)

    def describe(self) -> str:
        span = "from" if self.count == 0 else f"x{self.count} from"
        return f"drop {self.kind}{_for_file(self.file)} {span} #{self.nth}"


@dataclass(frozen=True)
class DelayPacket(Fault):
    """Hold packets ``nth`` .. ``nth+count-1`` of ``kind`` back for ``seconds``."""

    kind: str
    seconds: float
    nth: int = 1
    count: int = 1
    match: Match | None = None
    file: str | None = None  # as in DropPacket

    def __post_init__(self) -> None:
        _check_nth(self.nth, self.count)
        if not 0 < self.seconds <= 600:
            raise ConfigError(f"delay seconds={self.seconds} is outside (0, 600]")

    def describe(self) -> str:
        return f"delay {self.kind}{_for_file(self.file)} #{self.nth} by {self.seconds}s"


def _for_file(glob: str | None) -> str:
    return "" if glob is None else f" for {glob}"


@dataclass(frozen=True)
class WithholdOffers(Fault):
    """DHCP servers (v4 and v6) stay silent towards clients ``match`` selects."""

    match: Match
    reason: str = ""

    def describe(self) -> str:
        return self.reason or f"withhold offers from {self.match.describe()}"


@dataclass(frozen=True)
class OackFault(Fault):
    """Break option negotiation for files matching ``file`` (a glob)."""

    mode: OackMode
    file: str = "*"
    option: tuple[str, str] = ("windowsize", "64")  # what ADD_OPTION adds

    def describe(self) -> str:
        return f"OACK {self.mode} for {self.file}"


@dataclass(frozen=True)
class LieTsize(Fault):
    """Announce ``tsize`` in the OACK instead of the file's real size."""

    tsize: int
    file: str = "*"

    def describe(self) -> str:
        return f"tsize {self.tsize} for {self.file}"


@dataclass(frozen=True)
class TruncateFile(Fault):
    """Serve only the first ``size`` bytes of files matching ``file``, over TFTP and HTTP."""

    size: int
    file: str = "*"

    def describe(self) -> str:
        return f"truncate {self.file} to {self.size} bytes"


@dataclass(frozen=True)
class HttpError(Fault):
    """Answer HTTP requests for paths matching ``path`` with ``status``."""

    status: int
    path: str = "*"

    def __post_init__(self) -> None:
        if not 400 <= self.status <= 599:
            raise ConfigError(f"HTTP fault status {self.status} is not an error (400..599)")

    def describe(self) -> str:
        return f"HTTP {self.status} for {self.path}"


@dataclass(frozen=True)
class OmitOption(Fault):
    """Leave ``option`` out of replies of ``kind`` (a glob: "dhcp4.offer", "dhcp6.*").

    The servers build the reply as the policy decided, then drop the option:
    ``OmitOption("dhcp4.*", 60)`` takes the HTTPClient echo from an HTTP boot
    offer; ``OmitOption("dhcp6.*", 16)`` the DHCPv6 vendor class.
    """

    kind: str
    option: int
    match: Match | None = None

    def describe(self) -> str:
        return f"omit option {self.option} from {self.kind}"


@dataclass(frozen=True)
class AddOption(Fault):
    """Put ``option`` with ``value`` into replies of ``kind`` (a glob), replacing any there.

    ``AddOption("dhcp4.*", 60, b"PXEClient")`` echoes PXEClient; with
    ``OmitOption("dhcp4.*", 43)`` that is the BINL offer the UEFI PXE client
    follows to port 4011.
    """

    kind: str
    option: int
    value: bytes
    match: Match | None = None

    def describe(self) -> str:
        return f"add option {self.option}={self.value!r} to {self.kind}"


def _check_root_relative(path: str) -> None:
    parts = PurePosixPath(path).parts
    if not path or path.startswith("/") or ".." in parts:
        raise ConfigError(f"data-root fault path {path!r}: name a file relative to the "
                          "data root, without '..' (e.g. 'ldlinux.c32')")


@dataclass(frozen=True)
class RemoveFile(Fault):
    """The data root lacks ``path`` (relative to the root), as a server someone forgot
    to copy a file to."""

    path: str

    def __post_init__(self) -> None:
        _check_root_relative(self.path)

    def describe(self) -> str:
        return f"remove {self.path} from the data root"


@dataclass(frozen=True)
class ReplaceFile(Fault):
    """The data root's ``path`` is a copy of ``source`` (a host file), e.g. an
    ldlinux.c32 from another syslinux build; ``origin`` says where it came from."""

    path: str
    source: Path
    origin: str = ""

    def __post_init__(self) -> None:
        _check_root_relative(self.path)

    def describe(self) -> str:
        return f"replace {self.path} with {self.origin or self.source}"


@dataclass(frozen=True)
class StripSignature(Fault):
    """The data root's ``path`` (a PE image: an EFI program, an EFI-stub kernel) is the
    same image without its Authenticode signature, as an unsigned build of it is."""

    path: str

    def __post_init__(self) -> None:
        _check_root_relative(self.path)

    def describe(self) -> str:
        return f"strip the Authenticode signature off {self.path}"


@dataclass(frozen=True)
class ReplyEdits:
    """Options to take out of, and put into, one reply."""

    omit: frozenset[int] = frozenset()
    add: tuple[tuple[int, bytes], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.omit or self.add)


class Verdict:
    """What happens to one packet: pass, drop, or a delay in seconds."""

    __slots__ = ("delay", "drop")

    def __init__(self, drop: bool = False, delay: float = 0.0) -> None:
        self.drop = drop
        self.delay = delay

    def __bool__(self) -> bool:  # truthy: something is to be done
        return self.drop or self.delay > 0


PASS = Verdict()
NO_EDITS = ReplyEdits()


@dataclass(frozen=True)
class TftpFaults:
    """The faults that apply to one TFTP read request."""

    oack: OackFault | None = None
    tsize: int | None = None
    truncate: int | None = None


def _file_matches(pattern: str, name: str) -> bool:
    return fnmatch.fnmatchcase(name.lstrip("/"), pattern.lstrip("/"))


class FaultInjector:
    """The running state of a fault list: counters, matching and events."""

    def __init__(self, faults: tuple[Fault, ...], events: EventLog) -> None:
        self.faults = faults
        self.events = events
        self._seen: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self.faults)

    def packet(self, kind: str, client: str = "", info: ClientInfo | None = None,
               file: str | None = None) -> Verdict:
        """Count one packet of ``kind`` (about ``file``, for TFTP) and say whether to drop
        or delay it.

        Each fault counts only the packets it could apply to (its kind, and its
        match and file glob if it has them), so "the 1st offer to arch-16 clients"
        means that.
        """
        if not self.faults:
            return PASS
        verdict = PASS
        for index, fault in enumerate(self.faults):
            if not isinstance(fault, DropPacket | DelayPacket) or fault.kind != kind:
                continue
            if fault.match is not None and (info is None or not fault.match.matches(info)):
                continue
            if fault.file is not None and (file is None or not _file_matches(fault.file, file)):
                continue
            with self._lock:
                self._seen[str(index)] += 1
                number = self._seen[str(index)]
            last = None if fault.count == 0 else fault.nth + fault.count - 1
            if verdict or number < fault.nth or (last is not None and number > last):
                continue
            self._fired(fault, client, f"{kind} #{number}" + (f" ({file})" if file else ""))
            verdict = Verdict(drop=True) if isinstance(fault, DropPacket) else Verdict(
                delay=fault.seconds)
        return verdict

    def reply_options(self, kind: str, client: str = "",
                      info: ClientInfo | None = None) -> ReplyEdits:
        """The options to omit from and add to a reply of ``kind`` (empty: none)."""
        omit: set[int] = set()
        add: list[tuple[int, bytes]] = []
        for fault in self.faults:
            if not isinstance(fault, OmitOption | AddOption):
                continue
            if not fnmatch.fnmatchcase(kind, fault.kind):
                continue
            if fault.match is not None and (info is None or not fault.match.matches(info)):
                continue
            self._fired(fault, client, kind)
            if isinstance(fault, OmitOption):
                omit.add(fault.option)
            else:
                add.append((fault.option, fault.value))
        return ReplyEdits(frozenset(omit), tuple(add)) if omit or add else NO_EDITS

    def withhold(self, client: ClientInfo) -> str | None:
        """The reason to stay silent towards ``client``, or None."""
        for fault in self.faults:
            if isinstance(fault, WithholdOffers) and fault.match.matches(client):
                self._fired(fault, client.mac, client.summary())
                return f"fault: {fault.describe()}"
        return None

    def tftp(self, filename: str, client: str = "") -> TftpFaults:
        """OACK, tsize and truncation faults for one read request of ``filename``."""
        oack: OackFault | None = None
        tsize: int | None = None
        truncate: int | None = None
        for fault in self.faults:
            if isinstance(fault, OackFault) and oack is None and _file_matches(fault.file,
                                                                                filename):
                oack = fault
            elif isinstance(fault, LieTsize) and tsize is None and _file_matches(fault.file,
                                                                                  filename):
                tsize = fault.tsize
            elif isinstance(fault, TruncateFile) and truncate is None and _file_matches(
                    fault.file, filename):
                truncate = fault.size
            else:
                continue
            self._fired(fault, client, f"RRQ {filename}")
        return TftpFaults(oack, tsize, truncate)

    def truncate(self, path: str, client: str = "") -> int | None:
        """Size to cut ``path`` to when served over HTTP, or None."""
        for fault in self.faults:
            if isinstance(fault, TruncateFile) and _file_matches(fault.file, path):
                self._fired(fault, client, f"GET {path}")
                return fault.size
        return None

    def http_status(self, path: str, client: str = "") -> int | None:
        """An error status to answer a request for ``path`` with, or None."""
        for fault in self.faults:
            if isinstance(fault, HttpError) and _file_matches(fault.path, path):
                self._fired(fault, client, f"GET {path}")
                return fault.status
        return None

    def _fired(self, fault: Fault, client: str, request: str) -> None:
        log.info("fault injected: %s (%s, %s)", fault.describe(), client, request)
        self.events.emit("fault", "injected", client=client, request=request,
                         reason=fault.describe(), details={"fault": type(fault).__name__})
