"""The boot server: its protocols, the decisions it makes per client, its configuration.

- ``bootserver``: one thread, one asyncio loop, every protocol; ``udp`` the endpoint
  the datagram protocols share; ``settings``: each protocol's part of its
  ``ServerConfig`` (``Dhcp4Config``, ``RaConfig``, ...);
- ``dhcp4/``, ``dhcp6/``, ``ra/``, ``tftp/``, ``http/``: one package per protocol,
  a pure codec beside the code that speaks it (DHCPv4 and DHCPv6 also build their
  replies in pure ``replies`` modules); ``allocator``: the address picking the
  DHCPv4 and DHCPv6 lease pools share;
- ``match``: who a client is (``ClientInfo``), which clients a rule or fault is
  for (``Match``) and the boot file URL it is given (``boot_url``);
- ``policy``: the per-client decisions (``BootPolicy``); ``faults``: the faults the
  protocols inject; ``clients``: the directory of clients seen; ``bindings``: which
  addresses a DHCP event binds to its client or frees (the directory's reading, and
  the multi-guest lease check's);
- ``config``, ``config_reader``, ``config_policy``: the lab file of ``pxelab serve``;
  ``config_keys``: the one table of its keys (reader and README key list).

May import: pxelab.core.
"""
