"""What an accepted RRQ gets: the negotiated options, the bytes and the first packet.

:func:`plan_transfer` is pure: the request, the file and the TFTP faults that apply
in, a :class:`Plan` out; :class:`~pxelab.server.tftp.transfer.ReadTransfer` sends it.
"""

from __future__ import annotations

from dataclasses import dataclass

from pxelab.server.faults import OackMode, TftpFaults
from pxelab.server.tftp import codec
from pxelab.server.tftp.codec import Negotiated, OptionAck, ReadRequest

__all__ = ["Plan", "describe_options", "plan_transfer"]


def describe_options(options: tuple[tuple[str, str], ...]) -> str:
    return " ".join(f"{k}={v}" for k, v in options)


@dataclass(frozen=True)
class Plan:
    """What one accepted RRQ gets: the bytes, the parameters and the first packet."""

    data: bytes  # what is sent: netascii-converted and truncated as asked
    negotiated: Negotiated
    oack: bytes | None  # the OACK to send first (may be a faulty one); None: DATA 1 first
    refuse: bool = False  # a fault: ERROR 8 instead of the OACK
    fault: str = ""  # the OACK fault applied, for the event


def plan_transfer(request: ReadRequest, content: bytes, faults: TftpFaults, max_blksize: int,
                  max_windowsize: int) -> Plan:
    """Negotiate ``request`` for ``content`` and apply the TFTP faults (pure)."""
    data = codec.to_netascii(content) if request.mode == "netascii" else content
    size = len(data)  # tsize is the size on the wire, netascii included (RFC 2349)
    if faults.truncate is not None:  # the announced tsize stays the real one
        data = data[:max(faults.truncate, 0)]
    negotiated = codec.negotiate(request.options, size if faults.tsize is None else faults.tsize,
                                 max_blksize, max_windowsize)
    oack: tuple[tuple[str, str], ...] = negotiated.oack
    mode = faults.oack.mode if faults.oack is not None else None
    if mode is OackMode.IGNORE:  # an RFC 1350 server: DATA 1 of 512 bytes, window 1
        return Plan(data, Negotiated(), None, fault=mode.value)
    if mode is OackMode.REFUSE and request.options:
        return Plan(data, negotiated, None, refuse=True, fault=mode.value)
    if mode is OackMode.ADD_OPTION and faults.oack is not None:
        name, value = faults.oack.option
        oack = (*((n, v) for n, v in oack if n != name), (name, value))
        return Plan(data, negotiated, codec.encode(OptionAck(oack)), fault=mode.value)
    if mode is OackMode.CORRUPT and request.options:
        # A name without its value at the end: not a list of NUL-terminated pairs.
        flat = [part for pair in oack for part in pair] + [request.options[0][0]]
        malformed = codec.Opcode.OACK.to_bytes(2, "big") + b"".join(
            part.encode("latin-1") + b"\x00" for part in flat)
        return Plan(data, negotiated, malformed, fault=mode.value)
    return Plan(data, negotiated, codec.encode(OptionAck(oack)) if oack else None)
