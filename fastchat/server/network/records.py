"""The vocabulary between a worker and the sequencer: requests, sequenced events, deliveries.

Owns: the record kinds and the layout of each record.
Must never: hold logic. Records are plain tuples of ints and bytes so a whole batch can cross
the bus as one ``marshal`` frame (see :mod:`fastchat.server.runtime.bus`) and so building one on the hot
path costs a single tuple allocation.

A worker *requests* (``R_*``); the sequencer decides, in one global order, and answers with
*events* (``E_*``, broadcast to every worker, which all apply them to their replica of the
state) or *deliveries* (``D_*``, sent only to the workers that hold a recipient).
"""

from __future__ import annotations

from typing import Any

Record = tuple[Any, ...]

# -- requests: worker -> sequencer ------------------------------------------------------------
R_REGISTER = 1  # (R_REGISTER, uid, nick, user, host, realname, signon)
R_NICK = 2  # (R_NICK, uid, new_nick)
R_JOIN = 3  # (R_JOIN, uid, channel, key)
R_PART = 4  # (R_PART, uid, channel, reason)
R_QUIT = 5  # (R_QUIT, uid, reason)
R_TOPIC = 6  # (R_TOPIC, uid, channel, topic, now)
R_MODE = 7  # (R_MODE, uid, channel, modestring, args_tuple, now)
R_KICK = 8  # (R_KICK, uid, channel, target_nick, reason)
R_AWAY = 9  # (R_AWAY, uid, message)  empty message: back
R_INVITE = 10  # (R_INVITE, uid, target_nick, channel)
R_CHANMSG = 11  # (R_CHANMSG, uid, channel_key, line, is_notice, doubted)  line: formatted once
R_USERMSG = 12  # (R_USERMSG, uid, target_key, line, is_notice, doubted)
R_SYNC = 13  # (R_SYNC, uid)  a read barrier: decides nothing; its D_DONE comes back after
# every event the sequencer decided before it, so a query answered then is current
# "doubted": the worker's replica refused it; the sequencer answers with D_DONE too.
R_UMODE = 14  # (R_UMODE, uid, modes, changes)  modes: all the user's mode letters, sorted;
# changes: what this request changed, as the user's MODE echo shows it (b"+i-w")

# -- events: sequencer -> every worker (state changes, in the one global order) -----------------
E_INTRO = 21  # (E_INTRO, uid, nick, user, host, realname, worker, signon)
E_NICK = 22  # (E_NICK, uid, new_nick)
E_JOIN = 23  # (E_JOIN, uid, channel_name, member_flags, created)
E_PART = 24  # (E_PART, uid, channel_key, reason)
E_QUIT = 25  # (E_QUIT, uid, reason)
E_TOPIC = 26  # (E_TOPIC, uid, channel_key, topic, setter, when)
E_MODE = 27  # (E_MODE, uid, channel_key, applied_modes, applied_args)
E_KICK = 28  # (E_KICK, uid, channel_key, target_uid, reason)
E_AWAY = 29  # (E_AWAY, uid, message)
E_INVITE = 30  # (E_INVITE, uid, target_uid, channel_key)
E_UMODE = 31  # (E_UMODE, uid, modes, changes)  user modes are network state: +i hides from WHO

# -- deliveries and answers: sequencer -> the workers that need them ----------------------------
D_CHAN = 41  # (D_CHAN, channel_key, sender_uid, line)   to workers holding members
D_USER = 42  # (D_USER, target_uid, line)                  to the target's worker
D_REPLY = 43  # (D_REPLY, uid, numeric, params_tuple)       to the requester's worker
D_DONE = 44  # (D_DONE, uid)  the request of uid was decided; lifts its ordering barrier
D_KILL = 45  # (D_KILL, uid, reason)  disconnect a local client (a nick collision on resync)

# -- bus control: worker <-> hub ----------------------------------------------------------------
B_HELLO = 61  # worker -> hub:
# (B_HELLO, worker_slot, replica_snapshot | None, local_uids, first_seq, seen, order)
# A worker that starts sends no snapshot. One that lost its hub and reconnects to the new one
# sends its whole replica and the uids it holds (the hub merges them, see hub.py), the sequence
# number of the first request it will resend (``first_seq``: every request it sent that not
# every worker has received yet follows the hello again), ``seen`` (origin slot -> how many of
# that origin's requests it has received the effects of) and ``order``, the old hub's decision
# order it knows beyond what every worker had (a tuple of (origin slot, seq after the batch)).
B_SNAPSHOT = 62  # (B_SNAPSHOT, snapshot)                           hub -> worker
B_SEEN = 63  # (B_SEEN, order, stable)                               hub -> worker
# Ends every frame the hub sends. ``order``: the batches decided since the previous frame to
# this worker, as (origin slot, seq after the batch), in decision order; the frame holds every
# record they caused for this worker. ``stable``: origin slot -> seq below which every worker
# has received the effects (None: as in the last frame); an origin forgets its requests below
# it (nothing to resend).
B_RECEIVED = 64  # (B_RECEIVED, seen)                                worker -> hub
# How far this worker has received (origin slot -> seq); the hub's ``stable`` is the minimum.

#: Events that change state: every worker and the hub apply them.
STATE_EVENTS = frozenset(
    {E_INTRO, E_NICK, E_JOIN, E_PART, E_QUIT, E_TOPIC, E_MODE, E_KICK, E_AWAY, E_INVITE, E_UMODE}
)

# member flags in a channel (RFC 2812 §4.2.x / Modern IRC PREFIX)
VOICE = 1
OP = 2
