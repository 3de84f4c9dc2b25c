"""fastchat's benchmark harness: ``python -m bench.run`` (``make bench``) drives it.

Owns nothing at import time; see ``run`` (scenarios), ``loadgen`` (the load generator),
``counting`` (pure delivery counting and latency maths), ``peers`` (the servers under test)
and ``report`` (JSON, Markdown and the chart).
"""
