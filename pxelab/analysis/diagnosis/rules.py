"""The diagnosis rules, most specific first (see pxelab.analysis.diagnosis).

Each rule looks at one failure pattern and stays silent on anything else;
:func:`pxelab.analysis.diagnosis.diagnose` runs them all and lists every cause found, in
this order, so the first is the most specific explanation. The modules hold
the rules by area; :mod:`pxelab.analysis.diagnosis.query` the questions they share.

| code                              | rule                                   |
|-----------------------------------|----------------------------------------|
| console.milestone_unmatched       | milestones.milestone_unmatched         |
| initrd.no_network_driver          | linux.no_network_driver                |
| initrd.unpack_failed, ...         | guest.known_line                       |
| secureboot.sbat_revoked           | sbat.sbat_revoked                      |
| grub.no_http_module               | grub.http_module_missing               |
| ipxe.chainload_loop               | ipxe.chainload_loop                    |
| secureboot.unsigned_second_stage  | secureboot.unsigned_second_stage       |
| secureboot.unsigned_kernel        | secureboot.unsigned_kernel             |
| tftp.ldlinux_mismatch             | tftp.ldlinux_mismatch                  |
| tftp.oack_unrequested_option      | tftp.oack_unrequested_option           |
| tftp.oack_malformed               | tftp.oack_malformed                    |
| tftp.blksize_above_mtu            | tftp.blksize_above_mtu                 |
| nfs.no_server                     | nfs.no_server                          |
| nfs.export_not_found              | nfs.export_not_found                   |
| nfs.permission_denied             | nfs.permission_denied                  |
| nfs.version_mismatch              | nfs.version_mismatch                   |
| file.not_found (after the NBP)    | tftp.next_file_missing                 |
| file.not_found (the NBP)          | files.nbp_not_found                    |
| transfer.short                    | transfers.short                        |
| dhcp6.release_unanswered          | dhcp6.release_unanswered               |
| dhcp6.advertise_no_vendor_class   | dhcp6.advertise_no_vendor_class        |
| dhcp.withheld_min_secs            | minsecs.withheld_min_secs              |
| dhcp.withheld, dhcp6.withheld     | decisions.withheld                     |
| dhcp.offer_no_boot_file           | decisions.offer_no_boot_file           |
| dhcp.offer_no_httpclient_echo     | dhcp.offer_no_httpclient_echo          |
| dhcp.pxeclient_without_43         | dhcp.pxeclient_without_43              |
| firmware.no_rng_device            | firmware.no_rng_device                 |
| request.unanswered                | requests.unanswered                    |
| request.refused                   | requests.refused                       |
| dhcp.no_discover                  | dhcp.no_discover                       |
| dhcp.offer_unused                 | dhcp.offer_unused (DHCP's fallback)    |
| guest.error_line                  | guest.error_line (the last fallback)   |
"""

from __future__ import annotations

from pxelab.analysis.diagnosis import (
    decisions,
    dhcp,
    dhcp6,
    files,
    firmware,
    grub,
    guest,
    ipxe,
    linux,
    milestones,
    minsecs,
    nfs,
    requests,
    sbat,
    secureboot,
    tftp,
    transfers,
)
from pxelab.analysis.diagnosis.model import DiagnosisRule

RULES: tuple[DiagnosisRule, ...] = (
    milestones.milestone_unmatched,
    linux.no_network_driver,
    guest.known_line,
    sbat.sbat_revoked,
    grub.http_module_missing,
    ipxe.chainload_loop,
    secureboot.unsigned_second_stage,
    secureboot.unsigned_kernel,
    tftp.ldlinux_mismatch,
    tftp.oack_unrequested_option,
    tftp.oack_malformed,
    tftp.blksize_above_mtu,
    nfs.no_server,
    nfs.export_not_found,
    nfs.permission_denied,
    nfs.version_mismatch,
    tftp.next_file_missing,
    files.nbp_not_found,
    transfers.short,
    dhcp6.release_unanswered,
    dhcp6.advertise_no_vendor_class,
    minsecs.withheld_min_secs,
    decisions.withheld,
    decisions.offer_no_boot_file,
    dhcp.offer_no_httpclient_echo,
    dhcp.pxeclient_without_43,
    firmware.no_rng_device,
    # Requests nobody answered: after the rules that say why the answer was unusable.
    requests.unanswered,
    requests.refused,
    dhcp.no_discover,
    dhcp.offer_unused,
    guest.error_line,
)
