"""The core every room builds on: nothing here knows about boot servers or guests.

- ``errors``: the one exception tree, with messages that say how to fix things;
- ``events``: the event log every boot-server decision and transfer lands in;
- ``resource``: the context-managed base of everything that is started and stopped;
- ``netns``: entering a network namespace (per thread);
- ``paths``: where the fixtures are and where a run's artifacts go;
- ``mac``: MAC addresses in one text form, and an interface's own;
- ``memo``: ``memoized``, a lock-free cached property.

May import: nothing else of pxelab.
"""
