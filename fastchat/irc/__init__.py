"""The IRC protocol, sans-I/O: parsing, formatting, case mapping, line framing, numerics.

Nothing in this package touches a socket, a clock, a file or a process. It is shared by the
server and the client.
"""
