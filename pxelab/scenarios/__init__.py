"""What to boot and what a good boot looks like.

- ``cases``: the scenarios (firmware, boot path, policy, milestones) and their NIC variants;
- ``milestones``: the console lines each boot path passes, with timeouts;
- ``matrix``: the scenarios as test cases with their markers;
- ``dataroot``: the directory a scenario's boot server serves, filled from the
  firmware, the NBP and the payload, and broken as its data-root faults say;
- ``regressions/``: the regressions, named faults that reproduce field failures.

May import: pxelab.core, pxelab.server, pxelab.daemons, pxelab.machine.
"""
