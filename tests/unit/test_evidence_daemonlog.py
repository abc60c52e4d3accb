"""ganesha's log as evidence: its line format, which lines are kept, collect() reads it.

The lines are ganesha 4.3's own, from real boots (issue 14: legacy_pxe_ipv4 with the
export's Access_Type None, SecType krb5, Minor_Versions 1-2), trimmed of the host name.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from pxelab.analysis.evidence import BootFacts, Evidence, LogLine, Source
from pxelab.analysis.evidence.collect import collect
from pxelab.analysis.evidence.daemonlog import (
    GANESHA_LOG,
    parse_line,
    parse_stamp,
    read_ganesha_log,
)
from pxelab.machine import nfs
from pxelab.machine.console import Timeline
from pxelab.scenarios.cases import get_scenario

pytestmark = pytest.mark.unit

HEAD = "epoch 6b160150 : vm : nfs-ganesha-25521"
# The start of a boot's log: the first line comes before ganesha read its config (its
# default stamp: local time, whole seconds), the others in pxelab's syslog_usec format.
STARTUP = f"""\
07/12/2026 00:44:00 : {HEAD}[main] main :MAIN :EVENT :nfs-ganesha Starting: Ganesha Version 4.3
07/12/2026 00:44:00 : {HEAD}[main] load_rados_config :CONFIG :WARN :Missing RADOS URLs backend library
2026-12-07T00:44:00.858357+0000 : {HEAD}[main] SetComponentLogLevel :LOG :NULL :LOG: Changing log level of COMPONENT_NFS_V4 from NIV_EVENT to NIV_INFO
2026-12-07T00:44:00.860256+0000 : {HEAD}[main] ReadExports :EXPORT :INFO :Export     1 pseudo (/pxelab) with path (/srv/rootfs) and tag ((null)) perms (options=022040a0/0771f1e7 no_root_squash, R-r-, -4-, ---, TCP, ----,               ,         ,                ,                ,                , krb5)
2026-12-07T00:44:00.860369+0000 : {HEAD}[main] gsh_dbus_pkginit :DBUS :CRIT :dbus_bus_get failed (Failed to connect to socket /run/dbus/system_bus_socket: No such file or directory)
2026-12-07T00:44:00.862274+0000 : {HEAD}[main] __Register_program :DISP :MAJ :Cannot register NFS V4 on TCP
2026-12-07T00:44:00.862511+0000 : {HEAD}[main] find_keytab_entry :NFS CB :WARN :Configuration file does not specify default realm while getting default realm name
2026-12-07T00:44:00.862519+0000 : {HEAD}[main] gssd_refresh_krb5_machine_credential :NFS CB :CRIT :ERROR: gssd_refresh_krb5_machine_credential: no usable keytab entry found in keytab /etc/krb5.keytab for connection with host localhost
2026-12-07T00:44:00.862536+0000 : {HEAD}[main] nfs_rpc_cb_init_ccache :NFS STARTUP :WARN :gssd_refresh_krb5_machine_credential failed (-1765328160:2)
2026-12-07T00:44:00.862795+0000 : {HEAD}[dbus] gsh_dbus_thread :DBUS :CRIT :DBUS not initialized, service thread exiting
2026-12-07T00:44:00.862886+0000 : {HEAD}[main] nfs_Start_threads :THREAD :EVENT :General fridge was started successfully
"""  # noqa: E501 - ganesha's lines as it writes them
WRONGSEC = f"""\
2026-12-07T00:44:08.360188+0000 : {HEAD}[svc_5] export_check_security :EXPORT :INFO :Export /pxelab does not support AUTH_UNIX
2026-12-07T00:44:08.360222+0000 : {HEAD}[svc_5] nfs4_export_check_access :NFS4 :INFO :NFS4 auth not allowed on Export_Id 1 /pxelab for client ::ffff:192.0.2.100
2026-12-07T00:44:08.500644+0000 : {HEAD}[Admin] do_shutdown :MAIN :EVENT :NFS EXIT: stopping NFS service
"""  # noqa: E501
AT = datetime.fromisoformat("2026-12-07T00:44:08.360188+00:00").timestamp()


def test_both_stamp_forms_are_on_the_wall_clock() -> None:
    assert parse_stamp("2026-12-07T00:44:08.360188+0000") == AT
    local = datetime(2026, 12, 7, 0, 44, 0).timestamp()  # ganesha's default: local time
    assert parse_stamp("07/12/2026 00:44:00") == local
    assert parse_stamp("Dec  7 00:44:00") is None


def test_a_line_and_its_fields() -> None:
    line = parse_line(WRONGSEC.splitlines()[1])
    assert line is not None
    assert (line.time, line.function, line.component, line.level) == (
        AT + 0.000034, "nfs4_export_check_access", "NFS4", "INFO")
    assert line.message == ("NFS4 auth not allowed on Export_Id 1 /pxelab for client "
                            "::ffff:192.0.2.100")
    assert line.log_line() == LogLine(line.time, f"NFS4 INFO: {line.message}", "ganesha")
    assert parse_line("  continued message") is None


def test_file_and_line_before_the_function_are_skipped() -> None:
    # What a Format block without File_Name/Line_Num = false writes.
    line = parse_line(f"2026-12-07T00:44:18.033269+0000 : {HEAD}[svc_4] "
                      "./src/Protocols/NFS/nfs4_Compound.c:1202 :nfs4_Compound :NFS4 :INFO "
                      ":Unsupported minor version 0")
    assert line is not None
    assert (line.function, line.component, line.message) == (
        "nfs4_Compound", "NFS4", "Unsupported minor version 0")


def test_the_evidence_keeps_refusals_not_start_up_chatter(tmp_path: Path) -> None:
    path = tmp_path / "ganesha.log"
    path.write_text(STARTUP + WRONGSEC)
    assert [line.text for line in read_ganesha_log(path)] == [
        "EXPORT INFO: Export /pxelab does not support AUTH_UNIX",
        "NFS4 INFO: NFS4 auth not allowed on Export_Id 1 /pxelab for client ::ffff:192.0.2.100",
    ]


def test_a_healthy_boots_log_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "ganesha.log"
    path.write_text(STARTUP)
    assert read_ganesha_log(path) == ()
    assert read_ganesha_log(tmp_path / "missing.log") == ()


def test_a_debug_log_is_capped_with_a_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    monkeypatch.setattr("pxelab.analysis.evidence.daemonlog.MAX_DAEMON_LINES", 1)
    path = tmp_path / "ganesha.log"
    path.write_text(WRONGSEC)
    notes: list[str] = []
    assert len(read_ganesha_log(path, notes)) == 1
    assert notes == ["ganesha log: 2 lines worth keeping, the evidence keeps the last 1 "
                     "(all are in ganesha.log)"]


def test_ganesha_lines_are_daemon_entries_of_the_timeline() -> None:
    line = LogLine(AT, "NFS4 INFO: Unsupported minor version 0", "ganesha")
    evidence = Evidence(facts=_facts(), started_wall=AT - 6.0,
                        timeline=Timeline("legacy_pxe_ipv4"), daemon_log=(line,))
    (entry,) = evidence.entries()
    assert (entry.seconds, entry.source, entry.name) == (6.0, Source.DAEMON, "ganesha")
    assert entry.render() == ("   6.000s  daemon   ganesha                NFS4 INFO: "
                              "Unsupported minor version 0")


def test_daemon_lines_survive_evidence_json_and_old_files_load(tmp_path: Path) -> None:
    line = LogLine(AT, "NFS4 INFO: Unsupported minor version 0", "ganesha")
    evidence = Evidence(facts=_facts(), started_wall=AT - 6.0,
                        timeline=Timeline("legacy_pxe_ipv4"), daemon_log=(line,))
    evidence.write(tmp_path)
    assert Evidence.load(tmp_path) == evidence
    data = evidence.to_dict()
    del data["daemon_log"]  # evidence.json from before daemon lines
    data["firmware_log"] = [{"time": AT, "text": "BdsDxe: loading Boot0001"}]
    old = Evidence.from_dict(data)
    assert old.daemon_log == () and old.firmware_log == (LogLine(AT, "BdsDxe: loading Boot0001"),)


def test_the_config_logs_refusals_at_info_with_exact_stamps() -> None:
    text = nfs.ganesha_config(export_dir=Path("/srv/root"), workdir=Path("/w"),
                              bind_address="192.0.2.1", pseudo_path="/pxelab",
                              read_only=True, dbus_prefix="pxelab_1_1", release=(6, 2))
    block = text[text.index("LOG {"):]
    assert "NFS_V4 = INFO;" in block and "EXPORT = INFO;" in block
    assert "Date_Format = syslog_usec;" in block and "Time_Format = syslog_usec;" in block
    assert "File_Name = false;" in block and "Line_Num = false;" in block
    # Component names both 4.3 and 6.x accept (6.x renamed CACHE_INODE*, dropped RPC).
    assert "DEBUG" not in block and "RPC" not in block and "INODE" not in block
    assert text.count("LOG {") == 1  # ganesha allows one LOG block (CONFIG_UNIQUE)


def test_collect_reads_the_ganesha_log(tmp_path: Path) -> None:
    (tmp_path / GANESHA_LOG).parent.mkdir(parents=True)
    (tmp_path / GANESHA_LOG).write_text(STARTUP + WRONGSEC)
    evidence = collect(get_scenario("legacy_pxe_ipv4"), tmp_path, Timeline("legacy_pxe_ipv4"),
                       [], started_wall=AT - 6.0)
    assert [line.source for line in evidence.daemon_log] == ["ganesha", "ganesha"]


def _facts() -> BootFacts:
    return BootFacts("legacy_pxe_ipv4")
