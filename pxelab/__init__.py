"""pxelab: test network boot end to end on emulated hardware.

The package is five rooms and what sits on top of them:

- ``core/``: errors, events, resources, namespaces, paths (imports nothing else);
- ``server/``: the boot server, its protocols, policy, faults and lab-file config;
- ``machine/``: the lab network, QEMU and firmware, the console, the payload, NFS;
- ``scenarios/``: what to boot, its milestones, the matrix, the regressions;
- ``analysis/``: evidence, diagnosis and reports of a boot that has ended.

On top: ``lab`` (one boot run), ``cli`` and ``pytest_plugin``, which may import any
room. Each room's ``__init__`` says what it may import; tests/unit/test_layout.py
holds it to that and keeps the import graph free of cycles.
"""

__version__ = "0.1.0"
