"""A worker without I/O: ``core`` (connections, ordering, effects), ``dispatch`` (the one
dispatcher), ``relay`` (the message hot path), ``replica`` (applying the sequencer's records
and showing them to local clients) and ``resync`` (exactly once across hub restarts). The
runtime feeds it bytes, records and the time, and carries out its effects."""
