"""What a boot left behind, read back: its evidence, a diagnosis, reports for people.

- ``evidence/``: console milestones, server events, packets and the firmware log merged
  on one clock (``collect`` gathers them after a boot);
- ``diagnosis/``: the failed stage and its likely cause, from the evidence;
- ``report/``: the same as text and as a self-contained HTML page;
- ``live``: guards that read the server's events while a boot runs and end a stage
  the events show has failed (the console watcher asks them).

Analysis reads the data types of the rooms below it (events, the console timeline,
the payload contract, TFTP codes, the scenario) and never runs a boot (``live`` only
judges one while it runs); nothing below imports it.

May import: pxelab.core, pxelab.server, pxelab.machine, pxelab.scenarios.
"""
