"""fastchat: a high-throughput multi-process IRC chat server and a curses client."""

__version__ = "0.1.0"
