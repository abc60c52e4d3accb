"""tftp protocol: codec.py is pure; server.py listens, transfer.py sends; files.py is the root."""
