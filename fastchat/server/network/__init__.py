"""The network's one truth, pure: the records workers and the sequencer exchange
(``records``), the users and channels every process replicates (``state``), and the sequencer
that decides every request in one order (``sequencer``). No sockets, no clock."""
