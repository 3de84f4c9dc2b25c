"""The chat client: a sans-I/O session layer and a thin curses (or plain line) view."""
