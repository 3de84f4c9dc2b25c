"""The embedded store: accounts and message history in one SQLite file, ``<data_dir>/fastchat.db``.

Runtime-side: it does file I/O and runs threads, so it sits with ``runtime/`` and the pure
core never imports it. :mod:`.schema` (the tables, the migrations, the rows), :mod:`.db`
(opening the file: WAL, the schema version), :mod:`.writer` (the one writing connection, in
its own thread, fed write operations the loop never waits for), :mod:`.reader` (queries
answered off the loop, by ticket) and :mod:`.accounts` (the ``fastchat accounts`` command
line's work on the file).
"""
