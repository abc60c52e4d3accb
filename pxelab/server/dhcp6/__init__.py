"""dhcp6 protocol: codec.py is pure, leases.py the IA_NA pool, server.py speaks it over asyncio."""
