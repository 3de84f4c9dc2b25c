"""The chat server: sans-I/O core (state, commands, sequencer) and its I/O shell."""
