"""The lab network: a namespace with one bridge that guests, servers and tcpdump share.

Every lab gets its own network namespace, so labs run in parallel without
seeing each other, and the same bridge name and addresses (``br0``,
192.0.2.1/24, 2001:db8::1/64) serve in each. Namespaces are named
``pxl-<xdist worker or m>-<creator pid>-<counter>``: the pid lets a later run
recognise and remove the leftovers of a run that died without cleaning up.

Setup waits on netlink state (pyroute2 ``poll``), never on fixed sleeps.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import logging
import os
import re
import select
import shlex
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from ipaddress import IPv4Interface, IPv6Interface
from pathlib import Path
from types import TracebackType
from typing import Any

from pyroute2 import IPRoute
from pyroute2 import netns as _netns
from pyroute2.netlink.exceptions import NetlinkError

from pxelab.core.errors import HostCapabilityError, NetworkError
from pxelab.core.netns import thread_in_namespace
from pxelab.machine.capture import PacketCapture

log = logging.getLogger(__name__)

PREFIX = "pxl-"
NETNS_DIR = Path(_netns.NETNS_RUN_DIR)
PCAP_NAME = "lab.pcap"
WAIT_TIMEOUT_S = 10.0
KILL_GRACE_S = 2.0
IFA_F_NODAD = 0x02  # linux/if_addr.h: the address is usable at once, no DAD
IFNAMSIZ = 15

_NAME = re.compile(rf"^{PREFIX}[A-Za-z0-9]+-(?P<pid>\d+)-\d+$")
_counter = itertools.count()


def lab_namespace_name() -> str:
    """A namespace name unique on this host while this process lives."""
    worker = re.sub(r"[^A-Za-z0-9]", "", os.environ.get("PYTEST_XDIST_WORKER", "")) or "m"
    return f"{PREFIX}{worker}-{os.getpid()}-{next(_counter)}"


def creator_pid(namespace: str) -> int | None:
    """The pid encoded in a lab namespace name, or None if it is not a lab's."""
    match = _NAME.match(namespace)
    return int(match["pid"]) if match else None


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (one of another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ids_in(namespace: str, proc_dir: str) -> list[int]:
    """Numeric entries of ``proc_dir`` (processes or tasks) whose netns is ``namespace``."""
    try:
        target = os.stat(NETNS_DIR / namespace)
    except FileNotFoundError:
        return []
    ids = []
    for entry in os.scandir(proc_dir):
        if not entry.name.isdigit():
            continue
        try:
            st = os.stat(f"{proc_dir}/{entry.name}/ns/net")
        except OSError:
            continue  # gone, a zombie, or a kernel thread
        if (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino):
            ids.append(int(entry.name))
    return ids


def namespace_pids(namespace: str) -> list[int]:
    """Processes whose network namespace is ``namespace`` (like ``ip netns pids``)."""
    return _ids_in(namespace, "/proc")


def _own_threads_in(namespace: str) -> list[int]:
    return _ids_in(namespace, "/proc/self/task")


def _wait_exited(pids: list[int], timeout: float) -> list[int]:
    """Wait up to ``timeout`` for ``pids`` to end; those still running."""
    pidfds = {}
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            pidfds[os.pidfd_open(pid)] = pid
    try:
        poller = select.poll()
        for fd in pidfds:
            poller.register(fd, select.POLLIN)
        # A pidfd turns readable when its process ends (a zombie counts).
        waiting = set(pidfds)
        deadline = time.monotonic() + timeout
        while waiting and (remaining := deadline - time.monotonic()) > 0:
            for fd, _ in poller.poll(remaining * 1000):
                waiting.discard(fd)
                poller.unregister(fd)
        return [pidfds[fd] for fd in waiting]
    finally:
        for fd in pidfds:
            os.close(fd)


def kill_namespace_processes(namespace: str, logger: logging.Logger = log) -> list[int]:
    """SIGTERM, then SIGKILL, every process left in ``namespace``; the pids found."""
    pids = [p for p in namespace_pids(namespace) if p != os.getpid()]
    if not pids:
        return []
    logger.warning("processes still in namespace %s: %s; terminating them", namespace,
                   ", ".join(f"{p} ({_comm(p)})" for p in pids))
    for signum in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)
        pids = _wait_exited(pids, KILL_GRACE_S)
        if not pids:
            break
    if pids:
        logger.error("processes %s in namespace %s survived SIGKILL", pids, namespace)
    return pids


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def remove_namespace(namespace: str, logger: logging.Logger = log) -> None:
    """Kill what runs in ``namespace`` and delete it (its links go with it)."""
    kill_namespace_processes(namespace, logger)
    tids = _own_threads_in(namespace)
    if tids:
        logger.warning("threads %s of this process are still in namespace %s; it will "
                       "live on until they leave", tids, namespace)
    try:
        _netns.remove(namespace)
    except FileNotFoundError:
        return
    logger.debug("namespace %s removed", namespace)


def sweep_stale_labs(logger: logging.Logger = log) -> list[str]:
    """Remove lab namespaces whose creator process is gone; their names."""
    removed = []
    for namespace in _netns.listnetns():
        pid = creator_pid(namespace)
        if pid is None or pid_alive(pid):
            continue
        logger.warning("removing stale lab namespace %s (creator pid %d is gone)",
                       namespace, pid)
        try:
            remove_namespace(namespace, logger)
        except OSError as error:  # another process may be sweeping it right now
            logger.warning("could not remove stale namespace %s: %s", namespace, error)
            continue
        removed.append(namespace)
    return removed


def write_sysctl(namespace: str, key: str, value: str) -> None:
    """Set net sysctl ``key`` (dotted) inside ``namespace``."""
    path = Path("/proc/sys") / key.replace(".", "/")
    with thread_in_namespace(namespace):
        path.write_text(value)


def _wait(ipr: IPRoute, what: str, method: Any, **spec: Any) -> list[Any]:
    """Poll a netlink dump until it returns something matching ``spec``."""
    try:
        result: list[Any] = ipr.poll(method, "dump", timeout=WAIT_TIMEOUT_S, interval=0.01,
                                     **spec)
    except TimeoutError:
        seen = [(m.get("ifname") or m.get("address"), m.get("flags"))
                for m in method("dump")]
        raise NetworkError(f"netlink never showed {what} within {WAIT_TIMEOUT_S}s; "
                           f"seen instead: {seen}") from None
    return result


class LabNetwork:
    """A namespace holding bridge ``br0`` with the lab addresses, taps and a capture.

    ``with LabNetwork(artifacts_dir=d) as lab:`` creates it (after removing the
    leftovers of dead runs) and removes everything at exit, exceptions and
    KeyboardInterrupt included. The capture goes to ``d/lab.pcap``; without an
    ``artifacts_dir`` (or with ``capture=False``) nothing is recorded.
    """

    bridge = "br0"
    ipv4 = IPv4Interface("192.0.2.1/24")
    ipv6 = IPv6Interface("2001:db8::1/64")
    bridge_mac = "02:00:00:00:00:01"

    def __init__(self, name: str | None = None, artifacts_dir: Path | None = None,
                 capture: bool = True) -> None:
        self.namespace = name or lab_namespace_name()
        self.pcap_path: Path | None = (artifacts_dir / PCAP_NAME
                                       if capture and artifacts_dir else None)
        self.taps: list[str] = []
        self.log = logging.getLogger(f"{__name__}.{self.namespace}")
        self._capture: PacketCapture | None = None
        self._created = False
        self._bridge_index = 0
        self.impairments: dict[str, Impairment] = {}  # port -> what impair() set on it
        self._base_mtu: dict[str, int] = {}  # port -> its MTU before impair() changed it

    def __enter__(self) -> LabNetwork:
        sweep_stale_labs(self.log)
        try:
            self._create()
            if self.pcap_path is not None:
                self._capture = PacketCapture(self.namespace, self.bridge, self.pcap_path)
                self._capture.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _create(self) -> None:
        if os.geteuid() != 0:
            raise HostCapabilityError("a lab network needs root (network namespaces, "
                                      "bridges, taps); run as root or in a privileged container")
        if self.namespace in _netns.listnetns():
            raise NetworkError(f"namespace {self.namespace} already exists; pick another name")
        _netns.create(self.namespace)
        self._created = True
        # No duplicate address detection: addresses (the bridge's link-local
        # included, which RAs are sent from) are usable as soon as they exist.
        for scope in ("all", "default"):
            write_sysctl(self.namespace, f"net.ipv6.conf.{scope}.accept_dad", "0")
        with IPRoute(netns=self.namespace, flags=0) as ipr:
            ipr.link("set", index=1, state="up")
            # STP off and no forward delay: a port forwards as soon as it is up.
            # A fixed MAC: a bridge otherwise takes the lowest of its ports' MACs,
            # so its address would change under the servers as taps come and go.
            ipr.link("add", ifname=self.bridge, kind="bridge", address=self.bridge_mac,
                     br_stp_state=0, br_forward_delay=0)
            (index,) = _wait(ipr, f"bridge {self.bridge}", ipr.link, ifname=self.bridge)
            self._bridge_index = index["index"]
            ipr.addr("add", index=self._bridge_index, address=str(self.ipv4.ip),
                     prefixlen=self.ipv4.network.prefixlen)
            ipr.addr("add", index=self._bridge_index, address=str(self.ipv6.ip),
                     prefixlen=self.ipv6.network.prefixlen, flags=IFA_F_NODAD)
            ipr.link("set", index=self._bridge_index, state="up")
            _wait(ipr, f"{self.bridge} up", ipr.link, index=self._bridge_index, state="up")
            for address in (self.ipv4, self.ipv6):
                _wait(ipr, f"{address} on {self.bridge}", ipr.addr, index=self._bridge_index,
                      address=str(address.ip))
            # Router advertisements are sent from the link-local address; it
            # exists once the bridge has carrier (at once on recent kernels,
            # with the first forwarding port on older ones).
            (bridge,) = ipr.link("get", index=self._bridge_index)
            if bridge.get("carrier"):
                _wait(ipr, f"an IPv6 link-local address on {self.bridge}", ipr.addr,
                      index=self._bridge_index, family=socket.AF_INET6, scope=253)
        self.log.info("lab namespace %s: %s with %s and %s", self.namespace, self.bridge,
                      self.ipv4, self.ipv6)

    def add_tap(self, name: str | None = None, mtu: int | None = None) -> str:
        """Create a tap in the namespace, attached to the bridge and up; its name.

        A QEMU started in the namespace (``ip netns exec``) opens it by name;
        the tap gets carrier, and the bridge port forwards, when QEMU does.
        ``mtu``: the tap's MTU (None: the bridge's). The bridge keeps its own, so
        the servers still see a 1500-byte link while frames larger than ``mtu``
        towards the guest are dropped on the way out: a smaller-MTU hop on the path.
        """
        if mtu is not None:
            Impairment(mtu=mtu)  # checks the range
        if not self._created:
            raise NetworkError("add_tap() needs an entered LabNetwork")
        name = name or f"tap{len(self.taps)}"
        if len(name) > IFNAMSIZ:
            raise NetworkError(f"interface name {name!r} is longer than {IFNAMSIZ} characters")
        with IPRoute(netns=self.namespace, flags=0) as ipr:
            try:
                ipr.link("add", ifname=name, kind="tuntap", mode="tap")
            except NetlinkError as error:
                raise NetworkError(f"cannot create tap {name} in {self.namespace}: "
                                   f"{os.strerror(error.code)}") from error
            (tap,) = _wait(ipr, f"tap {name}", ipr.link, ifname=name)
            # The host side of a guest's link needs no IPv6 of its own (no RS/MLD noise).
            write_sysctl(self.namespace, f"net.ipv6.conf.{name}.disable_ipv6", "1")
            if mtu is not None:
                (bridge,) = ipr.link("get", index=self._bridge_index)
                ipr.link("set", index=tap["index"], mtu=mtu)
            ipr.link("set", index=tap["index"], master=self._bridge_index, state="up")
            _wait(ipr, f"tap {name} up in {self.bridge}", ipr.link, index=tap["index"],
                  master=self._bridge_index, state="up")
            if mtu is not None:
                # A bridge follows its smallest port unless its MTU is set: set it back,
                # or the servers would see the small MTU (and fragment or cap for it).
                ipr.link("set", index=self._bridge_index, mtu=bridge.get_attr("IFLA_MTU"))
        self.taps.append(name)
        self.log.info("tap %s attached to %s%s", name, self.bridge,
                      "" if mtu is None else f" (MTU {mtu})")
        return name

    # -- link impairment ------------------------------------------------------------------

    def impair(self, port: str, *, loss: float = 0.0, delay: float = 0.0,
               mtu: int | None = None, rate: int | None = None) -> Impairment:
        """Make ``port`` (a bridge port: tap or veth) exactly this bad; the impairment set.

        ``loss``: percent of frames dropped, in each direction (nftables, bridge
        family). ``delay``: seconds added towards the guest (tc netem; raises
        HostCapabilityError where the kernel lacks sch_netem). ``mtu``: the
        port's link MTU (frames larger than it are dropped on the way in; the
        bridge follows its smallest port). ``rate``: bits per second towards the
        guest (tc tbf). Calling again replaces the previous impairment; all
        defaults (or :meth:`clear_impairment`) restore the port. Everything
        lives in the lab namespace and vanishes with it.
        """
        wanted = Impairment(loss, delay, mtu, rate)
        if not self._created:
            raise NetworkError("impair() needs an entered LabNetwork")
        link = self._link_info(port)
        if wanted.loss and link.get("master") != self.bridge:
            raise NetworkError(f"{port} is not a port of {self.bridge} in {self.namespace}; "
                               "frame loss is applied on bridge ports (add_tap() ones)")
        previous = self.impairments.get(port, Impairment())
        try:
            self._apply_qdisc(port, wanted)
        except HostCapabilityError:
            self._apply_qdisc(port, previous)
            raise
        self._apply_loss(port, wanted.loss)
        self._apply_mtu(port, wanted.mtu, int(link["mtu"]))
        if wanted == Impairment():
            self.impairments.pop(port, None)
            self.log.info("impairment on %s cleared", port)
        else:
            self.impairments[port] = wanted
            self.log.info("impairment on %s: %s", port, wanted.describe())
        return wanted

    def clear_impairment(self, port: str) -> None:
        """Undo :meth:`impair` on ``port``: no loss, no delay, no rate limit, its MTU back."""
        self.impair(port)

    def _ns_run(self, argv: list[str], stdin: str | None = None) -> str:
        """Run ``argv`` in the lab namespace; its stdout, or NetworkError with its stderr."""
        tool = shutil.which(argv[0])
        if tool is None:
            package = {"nft": "nftables", "tc": "iproute2", "ip": "iproute2"}.get(argv[0],
                                                                                 argv[0])
            raise HostCapabilityError(f"{argv[0]} not found; install it: apt-get install "
                                      f"{package}")
        command = ["ip", "netns", "exec", self.namespace, *argv]
        self.log.debug("running %s", shlex.join(command))
        result = subprocess.run(command, input=stdin, capture_output=True, text=True,
                                timeout=WAIT_TIMEOUT_S, check=False)
        if result.returncode != 0:
            raise _CommandError(shlex.join(command), result.stderr.strip())
        return result.stdout

    def _link_info(self, port: str) -> dict[str, Any]:
        try:
            (info,) = json.loads(self._ns_run(["ip", "-j", "link", "show", "dev", port]))
        except _CommandError as error:
            raise NetworkError(f"no link {port} in namespace {self.namespace}: "
                               f"{error.stderr}") from None
        return dict(info)

    def _apply_qdisc(self, port: str, wanted: Impairment) -> None:
        """Root qdisc: tbf for the rate, netem (under it, if both) for the delay."""
        with contextlib.suppress(_CommandError):  # nothing to delete is fine
            self._ns_run(["tc", "qdisc", "del", "dev", port, "root"])
        netem = ["netem", "delay", f"{round(wanted.delay * 1e6)}us"]
        try:
            if wanted.rate is not None:
                # burst: 100 ms of traffic, never less than a few full frames.
                burst = max(wanted.rate // 80, 16384)
                self._ns_run(["tc", "qdisc", "add", "dev", port, "root", "handle", "1:", "tbf",
                              "rate", f"{wanted.rate}bit", "burst", str(burst),
                              "latency", "500ms"])
                if wanted.delay:
                    self._ns_run(["tc", "qdisc", "add", "dev", port, "parent", "1:1",
                                  "handle", "10:", *netem])
            elif wanted.delay:
                self._ns_run(["tc", "qdisc", "add", "dev", port, "root", "handle", "1:",
                              *netem])
        except _CommandError as error:
            if "netem" in error.command and "unknown" in error.stderr.lower():
                raise HostCapabilityError(
                    f"cannot delay {port}: this kernel has no sch_netem (tc says "
                    f"{error.stderr!r}). Delay a protocol step instead with the boot "
                    "server's fault pxelab.server.faults.DelayPacket(kind, seconds), e.g. "
                    "DelayPacket('tftp.data', 0.2)") from None
            raise NetworkError(f"cannot set the qdisc of {port}: {error}") from None

    def _apply_loss(self, port: str, loss: float) -> None:
        """One nftables bridge table per port: drop ``loss`` percent each way."""
        table = "pxelab_" + re.sub(r"[^A-Za-z0-9_]", "_", port)
        with contextlib.suppress(_CommandError):
            self._ns_run(["nft", "delete", "table", "bridge", table])
        if not loss:
            return
        # numgen counts 0..9999: loss in hundredths of a percent; 100 % is a plain drop.
        draw = "" if loss >= 100 else f"numgen random mod 10000 < {round(loss * 100)} "
        label = f'comment "pxelab: {loss:g}% loss on {port}"'
        ruleset = (
            f"table bridge {table} {{\n"
            f"  chain ingress {{ type filter hook prerouting priority 0; "
            f'iifname "{port}" {draw}counter drop {label}; }}\n'
            f"  chain egress {{ type filter hook postrouting priority 0; "
            f'oifname "{port}" {draw}counter drop {label}; }}\n'
            "}\n")
        try:
            self._ns_run(["nft", "-f", "-"], stdin=ruleset)
        except _CommandError as error:
            raise NetworkError(f"cannot add the loss rules for {port}: {error}") from None

    def _apply_mtu(self, port: str, mtu: int | None, current: int) -> None:
        if mtu is None:
            mtu = self._base_mtu.pop(port, None)
            if mtu is None or mtu == current:
                return
        else:
            self._base_mtu.setdefault(port, current)
        try:
            self._ns_run(["ip", "link", "set", "dev", port, "mtu", str(mtu)])
        except _CommandError as error:
            raise NetworkError(f"cannot set the MTU of {port} to {mtu}: {error}") from None

    def close(self) -> None:
        """Stop the capture, kill leftovers, delete the namespace; safe to call twice."""
        capture, self._capture = self._capture, None
        if capture is not None:
            try:
                capture.stop()
            except Exception:
                self.log.exception("stopping the capture failed")
        if self._created:
            self._created = False
            try:
                remove_namespace(self.namespace, self.log)
            except OSError as error:
                if error.errno != errno.ENOENT:
                    raise NetworkError(f"cannot remove namespace {self.namespace}: "
                                       f"{error}") from error
            self.log.info("lab namespace %s removed", self.namespace)


@dataclass(frozen=True)
class Impairment:
    """How bad one lab port is: see :meth:`LabNetwork.impair` for the units."""

    loss: float = 0.0  # percent of frames dropped, each direction
    delay: float = 0.0  # seconds, towards the guest
    mtu: int | None = None  # link MTU of the port
    rate: int | None = None  # bits per second, towards the guest

    def __post_init__(self) -> None:
        if not 0 <= self.loss <= 100:
            raise NetworkError(f"loss={self.loss} is not a percentage (0..100)")
        if not 0 <= self.delay <= 60:
            raise NetworkError(f"delay={self.delay} s is outside 0..60 seconds")
        if self.mtu is not None and not 68 <= self.mtu <= 65535:
            raise NetworkError(f"mtu={self.mtu} is outside 68..65535 (IPv6 needs 1280+)")
        if self.rate is not None and self.rate < 8000:
            raise NetworkError(f"rate={self.rate} bit/s is below 8000; rates are in bits "
                               "per second")

    def describe(self) -> str:
        parts = [f"{self.loss:g}% loss"] if self.loss else []
        if self.delay:
            parts.append(f"{self.delay * 1000:g} ms delay")
        if self.mtu is not None:
            parts.append(f"MTU {self.mtu}")
        if self.rate is not None:
            parts.append(f"{self.rate} bit/s")
        return ", ".join(parts) or "none"


class _CommandError(Exception):
    """A command run in the lab namespace failed (turned into NetworkError by callers)."""

    def __init__(self, command: str, stderr: str) -> None:
        super().__init__(f"{command}: {stderr}")
        self.command = command
        self.stderr = stderr
