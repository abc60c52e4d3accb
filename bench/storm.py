"""The pure parts of storm_bench.py: what a round measured, counters read from /proc, and the
tables. No sockets, processes or namespaces here, so that the unit tests can check them.

A *round* is N clients started together against one server for one cell (a file, and for
TFTP a blksize and windowsize); storm_bench.py makes the rounds, this module judges them.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

MIB = 1 << 20


# -- what the clients and the kernel said ------------------------------------------------------

@dataclass(frozen=True)
class ClientRun:
    """One client of a round: seconds from its start to its exit, bytes it got, and whether
    it got the whole file (``note`` says why not)."""

    seconds: float
    size: int
    ok: bool
    note: str = ""


def parse_curl(line: str) -> tuple[int, int, float]:
    """``curl -w '%{http_code} %{size_download} %{time_total}'`` -> (status, bytes, seconds)."""
    words = line.split()
    if len(words) != 3:
        raise ValueError(f"curl wrote {line!r}, not 'status bytes seconds'")
    return int(words[0]), int(words[1]), float(words[2].replace(",", "."))


def parse_snmp(text: str) -> dict[str, int]:
    """/proc/net/snmp (pairs of header and value lines) -> {"Udp.InDatagrams": n, ...}."""
    counters: dict[str, int] = {}
    lines = text.splitlines()
    for header, values in zip(lines[::2], lines[1::2], strict=False):
        group, _, names = header.partition(":")
        group2, _, numbers = values.partition(":")
        if group != group2:
            raise ValueError(f"/proc/net/snmp: {group!r} header followed by {group2!r} values")
        for name, number in zip(names.split(), numbers.split(), strict=True):
            counters[f"{group}.{name}"] = int(number)
    return counters


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {key: after[key] - before.get(key, 0) for key in after}


def proc_cpu_seconds(stat: str, clk_tck: int) -> float:
    """utime + stime + cutime + cstime of a /proc/PID/stat line (reaped children included)."""
    fields = stat.rsplit(")", 1)[1].split()  # the command may hold spaces and parentheses
    return sum(int(value) for value in fields[11:15]) / clk_tck


def tftp_blocks(size: int, blksize: int) -> int:
    """DATA blocks of a file: a last, short (maybe empty) block ends every transfer."""
    return size // blksize + 1


def tftp_server_datagrams(size: int, blksize: int, clients: int) -> int:
    """What a server sends for ``clients`` whole transfers with options: OACK + every block
    once. More on the wire is retransmission (or ERRORs, which a clean round has none of)."""
    return clients * (1 + tftp_blocks(size, blksize))


# -- rounds -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Cell:
    """What every client of a round fetches and how: TFTP with blksize x window, HTTP with 0s."""

    protocol: str
    file: str
    size: int
    blksize: int = 0
    window: int = 0

    @property
    def label(self) -> str:
        how = f" {self.blksize}x{self.window}" if self.protocol == "tftp" else ""
        return f"{self.file} ({self.size / MIB:.1f} MiB){how}"


@dataclass(frozen=True)
class Round:
    """N clients against one server for one cell.

    ``wall``: seconds from the first client's start to the last one's exit.
    ``server_cpu``: the server's CPU seconds (all processes and threads) during the round,
    None where unseen. ``retransmits``: datagrams (TFTP) or TCP segments (HTTP) the server's
    namespace sent again, from the kernel's counters; ``server_said`` what the server's own
    events said (pxelab only): its retransmissions and transfers that timed out.
    ``drops``: datagrams a receive buffer had no room for, both ends.
    """

    server: str
    cell: Cell
    clients: tuple[ClientRun, ...]
    wall: float
    server_cpu: float | None = None
    retransmits: int = 0
    drops: int = 0
    server_said: dict[str, int] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.clients)

    @property
    def failed(self) -> int:
        return sum(not client.ok for client in self.clients)

    @property
    def aggregate(self) -> float:
        """MiB/s of the whole files all clients got, over the round's wall time."""
        done = sum(client.size for client in self.clients if client.ok)
        return done / MIB / self.wall if self.wall > 0 else 0.0

    @property
    def slowest(self) -> float:
        return max(client.seconds for client in self.clients)


def median_round(rounds: Sequence[Round]) -> Round:
    """The round with the median aggregate (the lower one of an even count)."""
    ordered = sorted(rounds, key=lambda r: r.aggregate)
    return ordered[(len(ordered) - 1) // 2]


def group(rounds: Iterable[Round]) -> dict[tuple[Cell, int], dict[str, list[Round]]]:
    """(cell, N) -> server -> its rounds, in first-seen order."""
    table: dict[tuple[Cell, int], dict[str, list[Round]]] = defaultdict(dict)
    for one in rounds:
        table[one.cell, one.n].setdefault(one.server, []).append(one)
    return table


def render_transfers(rounds: Sequence[Round], servers: Sequence[str],
                     peers: Sequence[str]) -> str:
    """Two markdown tables: aggregate MiB/s (slowest client's seconds) with pxelab against the
    faster peer; then server CPU, retransmissions, drops and failed clients."""
    table = group(rounds)
    head = "| file | clients | " + " | ".join(servers)
    ratio = "pxelab" in servers and any(p in servers for p in peers)
    lines = [head + (" | pxelab / faster peer |" if ratio else " |"),
             "|---|---:|" + "---:|" * (len(servers) + ratio)]
    for (cell, n), by_server in table.items():
        medians = {s: median_round(by_server[s]) for s in servers if s in by_server}
        cells = [f"{medians[s].aggregate:.1f} ({medians[s].slowest:.2f} s)" if s in medians
                 else "n/a" for s in servers]
        if ratio:
            best = max((medians[p].aggregate for p in peers if p in medians), default=0.0)
            mine = medians.get("pxelab")
            cells.append(f"{mine.aggregate / best:.2f}" if mine and best else "n/a")
        lines.append(f"| {cell.label} | {n} | " + " | ".join(cells) + " |")
    lines += ["", "| file | clients | " + " | ".join(
        f"{s}: CPU s (% of wall) / resent / drops / failed" for s in servers) + " |",
        "|---|---:|" + "---:|" * len(servers)]
    for (cell, n), by_server in table.items():
        cells = []
        for server in servers:
            runs = by_server.get(server)
            if not runs:
                cells.append("n/a")
                continue
            cpu = [(r.server_cpu, r.server_cpu / r.wall) for r in runs
                   if r.server_cpu is not None and r.wall > 0]
            shown = (f"{statistics.median(c for c, _ in cpu):.2f} "
                     f"({100 * statistics.median(f for _, f in cpu):.0f}%)" if cpu else "n/a")
            cells.append(f"{shown} / {sum(r.retransmits for r in runs)} / "
                         f"{sum(r.drops for r in runs)} / {sum(r.failed for r in runs)}")
        lines.append(f"| {cell.label} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# -- DHCP --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LeaseRound:
    """New leases with ``in_flight`` clients at once: leases per second, the slowest
    exchange (ms), exchanges lost (no answer within the client's timeout) and refused, the
    server's CPU per lease (µs) and datagrams its receive buffers had no room for."""

    server: str
    exchange: str
    in_flight: int
    leases: int
    per_second: float
    slowest_ms: float
    lost: int
    refused: int
    server_cpu_us: float
    drops: int = 0


def render_leases(rounds: Sequence[LeaseRound], servers: Sequence[str]) -> str:
    """Leases per second (slowest exchange ms) per server, median over the repeats, pxelab
    against dnsmasq; lost/refused summed, CPU per lease as the median."""
    table: dict[tuple[str, int], dict[str, list[LeaseRound]]] = defaultdict(dict)
    for one in rounds:
        table[one.exchange, one.in_flight].setdefault(one.server, []).append(one)
    compare = "pxelab" in servers and "dnsmasq" in servers
    lines = ["| exchange | in flight | " + " | ".join(
        f"{s} /s (slowest ms, lost, drops, CPU µs)" for s in servers)
        + (" | pxelab / dnsmasq |" if compare else " |"),
        "|---|---:|" + "---:|" * (len(servers) + compare)]
    for (exchange, in_flight), by_server in table.items():
        rates: dict[str, float] = {}
        cells = []
        for server in servers:
            runs = by_server.get(server)
            if not runs:
                cells.append("n/a")
                continue
            rates[server] = statistics.median(r.per_second for r in runs)
            cells.append(f"{rates[server]:.0f} ({max(r.slowest_ms for r in runs):.1f}, "
                         f"{sum(r.lost + r.refused for r in runs)}, "
                         f"{sum(r.drops for r in runs)}, "
                         f"{statistics.median(r.server_cpu_us for r in runs):.0f})")
        if compare:
            cells.append(f"{rates['pxelab'] / rates['dnsmasq']:.2f}"
                         if rates.get("dnsmasq") and "pxelab" in rates else "n/a")
        lines.append(f"| {exchange} | {in_flight} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# -- profiles ----------------------------------------------------------------------------------

IDLE_FRAMES = ("recv_into (", "recvfrom (", "select (", "poll (", "accept (", "wait (",
               "sigwait (", "read (")


def thread_kind(frame: str) -> str:
    """py-spy --threads' first frame, "thread (TID): NAME", as the name's first word: every
    TFTP transfer thread ("tftp 10.0.0.2:1234") is "tftp"."""
    _, _, name = frame.partition("): ")
    return name.split(" ", 1)[0] if name else "unnamed"


def summarize_stacks(raw: str, top: int = 15) -> str:
    """py-spy's raw format ("frame;frame;... count" per line, first frame the thread with
    --threads): the busy samples per thread kind, per leaf frame, and per pxelab frame
    inclusive. Start-up (a stack that imports, ``<module>``) is left out; so is a sample
    whose leaf is a native blocking wait (py-spy reports those with --idle or --native)."""
    own: dict[str, int] = defaultdict(int)
    inclusive: dict[str, int] = defaultdict(int)
    threads: dict[str, int] = defaultdict(int)
    busy = idle = startup = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames, samples = stack.split(";"), int(count)
        if any(frame.startswith("<module> (") for frame in frames):
            startup += samples
            continue
        if frames[-1].startswith(IDLE_FRAMES):
            idle += samples
            continue
        busy += samples
        if frames[0].startswith("thread ("):
            threads[thread_kind(frames[0])] += samples
        own[frames[-1]] += samples
        for frame in set(frames):
            if "pxelab/" in frame:
                inclusive[frame] += samples
    lines = [f"{busy} busy samples, {idle} idle, {startup} at start-up"]
    for title, counts in (("by thread", threads), ("own time (leaf frame)", own),
                          ("inclusive, pxelab frames", inclusive)):
        if counts:
            lines.append(f"  {title}:")
            lines += [f"    {100 * n / max(busy, 1):5.1f}%  {frame}" for frame, n in
                      sorted(counts.items(), key=lambda item: -item[1])[:top]]
    return "\n".join(lines)
