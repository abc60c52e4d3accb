"""Every key of a lab file, in one table: what the reader accepts and what the docs list.

:mod:`pxelab.server.config` and :mod:`pxelab.server.config_policy` take the keys each
table may hold from here (a key not listed is an "unknown key" error naming the valid
ones), and the key list in ``fixtures/labs/README.md`` is :func:`markdown_table`'s
output (a unit test keeps the two the same; ``python -m pxelab.server.config_keys
fixtures/labs/README.md`` rewrites it). A new key is added here first.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ARRAYS", "FAULT_KEYS", "LAB_TABLES", "MATCH_KEYS", "LabKey", "LabTable",
           "keys_of", "markdown_table", "splice"]

MATCH_KEYS = ("arch", "vendor_class", "user_class", "mac", "family")


@dataclass(frozen=True)
class LabKey:
    """One key, or a group of keys documented together (``expands``)."""

    name: str
    doc: str = ""
    required: bool = False
    expands: tuple[str, ...] = ()  # a group: the keys it stands for

    @property
    def names(self) -> tuple[str, ...]:
        return self.expands or (self.name,)

    def markdown(self, brief: bool = False) -> str:
        """``brief``: without the description (given in an earlier row)."""
        label = self.name if self.expands else f"`{self.name}`"
        doc = "" if brief else self.doc
        notes = ": ".join(n for n in ("*required*" if self.required else "", doc) if n)
        return f"{label} ({notes})" if notes else label


@dataclass(frozen=True)
class LabTable:
    """A ``[section]`` or an array of tables (``[[rule]]``) and its keys."""

    name: str
    keys: tuple[LabKey, ...]
    array: bool = False

    @property
    def header(self) -> str:
        return f"[[{self.name}]]" if self.array else f"[{self.name}]"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for key in self.keys for name in key.names)


_MATCH = LabKey("match keys", "`arch` (number or list), `vendor_class` (prefix), "
                "`user_class`, `mac`, `family` (`\"ipv4\"`/`\"ipv6\"`)", expands=MATCH_KEYS)
_PACKET = (LabKey("kind", "`dhcp4.<message>`, `dhcp6.<message>`, `tftp.rrq`/`oack`/`data`, "
                  "`http.request`, `ra.advert`", required=True),
           LabKey("nth"), LabKey("count", "0: all from `nth`"))
_PACKET_FILE = LabKey("file", "glob, TFTP kinds only")
# Boot files are templates; the link works from fixtures/labs/README.md, where the table goes.
_TEMPLATE = "[template](../../docs/templates.md)"

LAB_TABLES: tuple[LabTable, ...] = (
    LabTable("server", (
        LabKey("interface"),
        LabKey("ipv4", "`\"192.0.2.1/24\"`, default: the interface's first global IPv4 "
               "address"),
        LabKey("ipv6", "`\"2001:db8::1/64\"` or `false`, default: the interface's, if any"),
        LabKey("data_root", "relative to the file's directory"))),
    LabTable("dhcp4", (
        LabKey("mode", "`\"full\"`, `\"proxy\"`, `\"off\"`"),
        LabKey("pool", "`[\"first\", \"last\"]`, default: the upper half of the subnet"),
        LabKey("lease_seconds", "also the DHCPv6 valid lifetime"),
        LabKey("router"),
        LabKey("dns", "list"),
        LabKey("min_secs"))),
    LabTable("dhcp6", (
        LabKey("enabled", "default: on if there is an IPv6 address"),
        LabKey("pool", "default `<prefix>::1:0` to `<prefix>::1:ffff`"),
        LabKey("dns"),
        LabKey("rapid_commit"),
        LabKey("preferred_seconds"))),
    LabTable("ra", (
        LabKey("enabled"),
        LabKey("managed", "M flag"),
        LabKey("other", "O flag"),
        LabKey("interval", "seconds"),
        LabKey("router_lifetime", "seconds, 0 = not a default router; OVMF waits ~10 s for "
               "a route without one"),
        LabKey("min_interval", "seconds between multicast RAs"),
        LabKey("retrans_timer", "ms, RFC 4861 Retrans Timer, 0 = unspecified; EDK2 waits this "
               "long per DAD probe, 100 saves UEFI IPv6 boots most of a second"))),
    LabTable("tftp", (
        LabKey("enabled"), LabKey("port"), LabKey("max_blksize"), LabKey("max_windowsize"),
        LabKey("timeout"), LabKey("retries"),
        LabKey("allow_absolute", "`/x` means `<data_root>/x`, as tftpd-hpa `--secure`"))),
    LabTable("http", (LabKey("enabled"), LabKey("port"))),
    LabTable("policy", (
        LabKey("profile", "`\"default\"`: the classic tree; `\"empty\"`: only your rules"),
        LabKey("ipxe_script", f"{_TEMPLATE}, or `false` to treat iPXE like any PXE client"))),
    LabTable("rule", (
        LabKey("name"),
        _MATCH,
        LabKey("boot_file", _TEMPLATE),
        LabKey("echo_vendor_class", "what option 60/16 says; `false`: nothing"),
        LabKey("withhold"),
        LabKey("pxelinux_config", "DHCP option 209"),
        LabKey("pxelinux_prefix", "DHCP option 210; ends in `/`")), array=True),
    LabTable("host", (
        LabKey("mac", required=True), LabKey("boot_file", _TEMPLATE), LabKey("withhold"),
        LabKey("reason"), LabKey("address", "a fixed IPv4 address")), array=True),
    LabTable("fault", (LabKey("type", "the fault, one of those that follow", required=True),),
             array=True),
)

# A [[fault]]'s keys besides ``type``, by type.
FAULT_KEYS: dict[str, tuple[LabKey, ...]] = {
    "drop": (*_PACKET, _MATCH, _PACKET_FILE),
    "delay": (_PACKET[0], LabKey("seconds", required=True), *_PACKET[1:], _MATCH, _PACKET_FILE),
    "withhold": (LabKey("reason"), _MATCH),
    "oack": (LabKey("mode", "`refuse`, `corrupt`, `add-option`, `ignore`", required=True),
             LabKey("file", "glob"), LabKey("option")),
    "tsize": (LabKey("tsize"), LabKey("file")),
    "truncate": (LabKey("size"), LabKey("file")),
    "http-error": (LabKey("status"), LabKey("path")),
}

ARRAYS = tuple(table.name for table in LAB_TABLES if table.array)
_BY_NAME = {table.name: table for table in LAB_TABLES}


def keys_of(table: str) -> tuple[str, ...]:
    """The keys ``[table]`` or ``[[table]]`` may hold; ``fault.<type>`` for a fault's."""
    if table.startswith("fault."):
        return ("type", *(n for key in FAULT_KEYS[table[6:]] for n in key.names))
    return _BY_NAME[table].names


def markdown_table() -> str:
    """The key list of ``fixtures/labs/README.md``."""
    rows = ["| section | keys |", "|---|---|"]
    for table in LAB_TABLES:
        cell = "; ".join(key.markdown() for key in table.keys)
        if table.name == "fault":
            described = {_MATCH}  # in [[rule]]
            kinds = []
            for kind, keys in FAULT_KEYS.items():
                kinds.append(f"`{kind}`: " + ", ".join(
                    key.markdown(brief=key in described) for key in keys))
                described.update(keys)
            cell += " and its keys: " + "; ".join(kinds)
        rows.append(f"| `{table.header}` | {cell} |")
    return "\n".join(rows) + "\n"


BEGIN = ("<!-- keys: made from pxelab/server/config_keys.py by `python -m "
         "pxelab.server.config_keys fixtures/labs/README.md`; edit the table there -->\n")
END = "<!-- end of keys -->\n"


def with_table(readme: str) -> str:
    """``readme`` with the text between :data:`BEGIN` and :data:`END` made anew."""
    return splice(readme, BEGIN, markdown_table())


def splice(text: str, begin: str, table: str, end: str = END) -> str:
    """``text`` with ``table`` between the markers ``begin`` and ``end`` (a generated
    key list in a document: this one's, and the lab files' of pxelab.labfile.keys)."""
    head, found_begin, rest = text.partition(begin)
    _, found_end, tail = rest.partition(end)
    if not found_begin or not found_end:
        raise ValueError(f"the document has no {begin.strip()} ... {end.strip()} markers")
    return head + begin + table + end + tail


def main(argv: list[str]) -> int:
    """Rewrite the key list of the README files given (``fixtures/labs/README.md``)."""
    for name in argv or ["fixtures/labs/README.md"]:
        path = Path(name)
        path.write_text(with_table(path.read_text(encoding="utf-8")), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
