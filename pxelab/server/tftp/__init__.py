"""tftp protocol: codec.py is pure; server.py listens, transfer.py sends; files.py is the root.

A transfer sees its server only through ``transfer.TransferHost``, so the two modules
do not import each other.
"""
