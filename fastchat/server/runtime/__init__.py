"""The I/O shell: the worker's ``selectors`` loop, the bus between workers and the hub, the
hub process, the supervisor, and ``process`` (start a server for tests and benchmarks). The
only part of the server that touches sockets, signals and the clock."""
