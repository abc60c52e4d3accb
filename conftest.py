"""Repository-level pytest configuration.

pxelab's fixtures come from its pytest plugin (entry point ``pytest11`` in
pyproject.toml), exactly as in any project that installs pxelab; nothing is
defined here so the tests exercise the plugin as users get it.
"""
