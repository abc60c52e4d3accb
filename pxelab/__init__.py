"""pxelab: test network boot end to end on emulated hardware."""

__version__ = "0.1.0"
