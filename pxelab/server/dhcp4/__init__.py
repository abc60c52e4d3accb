"""DHCPv4: ``codec`` and ``pxe`` (option 43) are pure, ``replies`` builds answers as pure
functions, ``leases`` keeps addresses, ``server`` (full DHCP) and ``proxy`` (proxyDHCP and
the PXE boot service on 4011) speak the protocol over asyncio."""
