"""Lab files: the user's own boot infrastructure as a test (``*.pxelab.toml``).

:func:`load_lab_file` reads and checks one; :func:`lab_cases` makes its tests,
one scenario per guest, NIC model and firmset set, which :class:`pxelab.lab.BootRun`
boots like any built-in scenario. The keys: :mod:`pxelab.labfile.keys`.

May import: pxelab.core, pxelab.server, pxelab.daemons, pxelab.machine, pxelab.scenarios.
"""

from pxelab.labfile.expand import lab_cases
from pxelab.labfile.parse import SUFFIX, GuestEntry, LabFile, load_lab_file

__all__ = ["SUFFIX", "GuestEntry", "LabFile", "lab_cases", "load_lab_file"]
