"""The hub (the sequencer process) dies: nobody notices but the log.

Workers keep their clients, reconnect to the replacement hub, and the new hub rebuilds the
network from the workers' replicas: nicks stay owned, channels keep members, topics and
modes, and chat between workers resumes. No client sees a JOIN or QUIT that did not happen.
"""

from __future__ import annotations

import os
import signal
import time

from fastchat.server.runtime import process
from tests.hardening.harness import client_on_worker, wait_for
from tests.ircclient import IRCClient


def test_hub_sigkill_keeps_every_client() -> None:
    with process.running(["--no-flood-control"], workers=2) as server:
        first, second = server.worker_pids()
        ada = client_on_worker(server, first, "ada")
        bob = client_on_worker(server, second, "bob")
        ada.send("JOIN #keep")
        ada.expect(r" 366 ada #keep ")
        ada.send("TOPIC #keep :survives")
        ada.send("MODE #keep +m")
        ada.expect(r"MODE #keep \+m")
        bob.send("JOIN #keep")
        bob.expect(r" 366 bob #keep ")
        ada.send("PART #lobby")
        ada.send("MODE ada +i")
        ada.expect(r"^:ada MODE ada :\+i$")
        ada.sync()
        bob.sync()

        old_hub = server.hub_pid()
        assert old_hub is not None
        os.kill(old_hub, signal.SIGKILL)
        wait_for(lambda: server.hub_pid() not in (None, old_hub), 5.0, "a new hub")

        ada.send("PRIVMSG #keep :still here")
        bob.expect(r"^:ada!\S+ PRIVMSG #keep :still here$")
        bob.send("PRIVMSG #keep :me too")  # +m: bob has no voice, the mode survived
        bob.expect(r" 404 bob #keep ")
        bob.send("NAMES #keep")
        names = bob.expect(r" 353 bob = #keep :(.*)$").group(1).split()
        assert sorted(names) == ["@ada", "bob"]
        bob.send("TOPIC #keep")
        bob.expect(r" 332 bob #keep :survives$")
        with IRCClient(server.host, server.port) as thief:
            thief.send("NICK ada")
            thief.expect(r" 433 \* ada ")
        with IRCClient(server.host, server.port, "eve") as eve:  # shares no channel with ada
            eve.sync()
            eve.send("WHO ad*")  # ada is still invisible: the new hub merged her user mode
            assert eve.sync() == [":fastchat.local 315 eve ad* :End of WHO list"]
            eve.send("LUSERS")
            eve.expect(r" 251 eve :There are 2 users and 1 invisible on 1 servers$")
        seen = ada.sync() + bob.sync()
        seen = [line for line in seen if "eve!" not in line]  # bob saw eve come and go
        assert not [line for line in seen if " JOIN " in line or " QUIT " in line], seen
        assert not ada.closed and not bob.closed
        assert set(server.worker_pids()) == {first, second}, "workers were not restarted"


def test_whowas_and_command_counts_survive_a_hub_restart() -> None:
    """The WHOWAS history and the STATS m counts are network state that no event can replay:
    a new hub merges them from the workers' replicas, and a worker that starts after it gets
    them in its snapshot (the counts also come back with each worker's next report, which
    carries its totals)."""
    with process.running(["--no-flood-control"], workers=2) as server:
        first, second = server.worker_pids()
        ada = client_on_worker(server, first, "ada")
        gone = client_on_worker(server, first, "gone")
        gone.send("QUIT :bye")
        gone.wait_closed()
        for _ in range(3):
            ada.send("USERS")
        ada.sync()
        bob = client_on_worker(server, second, "bob")
        deadline = time.monotonic() + 10
        while not [line for line in bob.sync() if " 212 bob USERS 3" in line]:
            assert time.monotonic() < deadline, "worker 0 never reported its counts"
            bob.send("STATS m")  # the first worker reports within about a second

        old_hub = server.hub_pid()
        assert old_hub is not None
        os.kill(old_hub, signal.SIGKILL)
        wait_for(lambda: server.hub_pid() not in (None, old_hub), 5.0, "a new hub")
        bob.sync()  # through the new hub: every worker has said hello, the merge is done
        os.kill(second, signal.SIGKILL)
        seen: list[int] = []

        def replaced() -> bool:  # one look at the process table, kept for what follows
            seen[:] = server.worker_pids()
            return len(seen) == 2 and first in seen and second not in seen

        wait_for(replaced, 5.0, "a new second worker")
        fresh = next(pid for pid in seen if pid != first)
        with client_on_worker(server, fresh, "asker") as asker:
            asker.sync()
            asker.send("WHOWAS gone")
            asker.expect(r" 314 asker gone ~gone \S+ \* :Real gone$")
            asker.send("STATS m")
            asker.expect(r" 212 asker USERS 3$")
        ada.close()
