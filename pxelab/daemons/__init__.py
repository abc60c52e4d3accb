"""Third-party boot daemons (dnsmasq, Kea, ISC dhcpd, radvd, tftpd-hpa, nginx) in a lab.

``spec`` checks a lab file's ``[[daemon]]`` tables, one module per daemon says
how to run it, ``base`` runs any of them (private state, log, readiness,
stop) and ``stack`` runs a lab's set.

May import: pxelab.core.
"""
