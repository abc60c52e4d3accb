"""The libvirt guest backend: a GuestSpec as a transient libvirt domain.

:mod:`.domain` writes the domain XML (pure); :mod:`.connection` opens libvirt and
reaps the domains of dead runs; :mod:`.guest` runs one domain as a lab's guest.
Needs the ``libvirt`` extra (libvirt-python) and a running libvirtd.
"""
