"""The web port, sans I/O: HTTP requests and IRC over WebSocket (issue 13).

A newcomer's map:

- :mod:`.http` reads one HTTP request (with h11) and decides its answer: a static file, an
  error status, or a WebSocket upgrade (RFC 6455 §4.2: version, key, Origin, and the IRCv3
  subprotocol, https://ircv3.net/specs/extensions/websocket).
- :mod:`.static` finds a requested file under the web root (never outside it) and its
  Content-Type and validator.
- :mod:`.websocket` is a connection after the upgrade: received bytes in, IRC lines out
  (wsproto parses frames: masking, fragmentation, ping/pong, close); IRC lines in, frames out.

The worker's loop (fastchat.server.runtime.webport) owns the sockets and the clock; nothing
in this package touches either.
"""
