"""ra protocol: codec.py is pure, server.py speaks it over asyncio."""
