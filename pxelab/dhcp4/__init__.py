"""dhcp4 protocol: codec.py is pure, server.py speaks it over asyncio."""
