/**
 * What the user sees, as data: the buffers (the server's, one per channel, one per private
 * conversation), their lines in time order, members with their prefixes, topics, unread
 * counts. Fed one parsed IRC message at a time by `apply`.
 *
 * Owns: the chat state and how each IRC message changes it. Must never: send anything, touch
 * the DOM, or read the clock (the caller passes `now`); that keeps it testable without a
 * browser or a server.
 */

import {
  caseFold,
  isChannel,
  parseCTCP,
  parseModeChanges,
  parseNamesEntry,
  parsePrefixToken,
  stripFormatting,
} from "./irc/parser.js";

export const SERVER_BUFFER = "*server*";

/** A tab keeps at most MAX_LINES lines; past that, its oldest go, down to KEEP_LINES. */
export const MAX_LINES = 4000;
const KEEP_LINES = 3000;

/** Line kinds that count as conversation (unread counts, highlights). */
const TALK = new Set(["message", "notice", "action"]);

let nextLineId = 1;

export class ChatState {
  constructor() {
    this.nick = "";
    this.isupport = {};
    this.buffers = new Map(); // folded name -> buffer
    this.active = SERVER_BUFFER;
    this.batches = new Map(); // ref -> {type, params, pending: lines held per buffer, count}
    this.pendingNames = new Map(); // folded channel -> Map of members being listed
    this.historyRequests = new Map(); // folded target -> {limit, kind: before|latest|latest-after}
    this.version = 0; // bumped on every change the views may need to show
    this.pageVisible = true; // false: even the active buffer's new lines are unread
    this.ensureBuffer(SERVER_BUFFER, "server");
  }

  // -- names -------------------------------------------------------------------------------
  get casemapping() {
    return this.isupport.CASEMAPPING || "rfc1459";
  }
  get chantypes() {
    return this.isupport.CHANTYPES ?? "#&";
  }
  get prefixes() {
    const parsed = parsePrefixToken(this.isupport.PREFIX || "(ov)@+");
    return parsed.length ? parsed : parsePrefixToken("(ov)@+");
  }
  fold(name) {
    return name === SERVER_BUFFER ? name : caseFold(name, this.casemapping);
  }
  isChannel(name) {
    return isChannel(name, this.chantypes);
  }
  isMe(nick) {
    return !!nick && this.fold(nick) === this.fold(this.nick);
  }

  // -- buffers -----------------------------------------------------------------------------
  buffer(name) {
    return this.buffers.get(this.fold(name)) || null;
  }

  ensureBuffer(name, kind = null) {
    const key = this.fold(name);
    let buf = this.buffers.get(key);
    if (!buf) {
      buf = {
        key,
        name,
        kind: kind || (this.isChannel(name) ? "channel" : "query"),
        lines: [],
        msgids: new Set(),
        members: new Map(), // folded nick -> {nick, prefixes, away}
        topic: "",
        topicBy: "",
        joined: false,
        unread: 0,
        highlight: false,
        historyExhausted: false,
        historyLoading: false,
        firstUnreadId: null, // the first line counted in `unread`
        markerBefore: null, // the line the "new messages" marker is shown above
        redrawn: new Set(), // ids of lines changed in place (a REDACT), for the view to redraw
        readUpTo: 0, // ms: read up to here, on any device (IRCv3 read-marker's MARKREAD)
        version: 0,
      };
      this.buffers.set(key, buf);
      this.version++;
    }
    return buf;
  }

  closeBuffer(name) {
    const key = this.fold(name);
    if (key === SERVER_BUFFER) return;
    this.buffers.delete(key);
    if (this.active === key) this.active = SERVER_BUFFER;
    this.version++;
  }

  setActive(name) {
    const buf = this.buffer(name);
    if (!buf) return;
    // the "new messages" line goes above the first line not read yet, if any: counted
    // here, or (history from before this page) after where another device read up to
    buf.markerBefore = buf.unread ? buf.firstUnreadId : firstAfter(buf, buf.readUpTo);
    this.active = buf.key;
    buf.unread = 0;
    buf.highlight = false;
    buf.version++;
    this.version++;
  }

  activeBuffer() {
    return this.buffers.get(this.active) || this.buffers.get(SERVER_BUFFER);
  }

  /** Buffers in display order: the server's, channels, then queries, each by name. */
  orderedBuffers() {
    const rank = { server: 0, channel: 1, query: 2 };
    return [...this.buffers.values()].sort(
      (a, b) => rank[a.kind] - rank[b.kind] || a.key.localeCompare(b.key),
    );
  }

  /** Members of a channel, highest prefix first, then by nick. */
  sortedMembers(buf) {
    const order = this.prefixes.map((p) => p.prefix).join("");
    const rankOf = (m) => (m.prefixes ? order.indexOf(m.prefixes[0]) : order.length);
    return [...buf.members.values()].sort(
      (a, b) => rankOf(a) - rankOf(b) || this.fold(a.nick).localeCompare(this.fold(b.nick)),
    );
  }

  /**
   * Add a line to a buffer, in time order (history arrives older than what is shown), once
   * per msgid (echo-message to oneself, and history overlapping what was seen live).
   */
  addLine(buf, line, { history = false } = {}) {
    if (line.msgid) {
      if (buf.msgids.has(line.msgid)) return null;
      buf.msgids.add(line.msgid);
    }
    const entry = { id: nextLineId++, history, ...line };
    const lines = buf.lines;
    let i = lines.length;
    while (i > 0 && lines[i - 1].time > entry.time) i--;
    lines.splice(i, 0, entry);
    if (lines.length > MAX_LINES) this._trim(buf);
    if (!history && TALK.has(entry.type) && !entry.self && (buf.key !== this.active || !this.pageVisible)) {
      if (!buf.unread) buf.firstUnreadId = entry.id;
      buf.unread++;
      if (buf.kind === "query" || entry.highlight) buf.highlight = true;
    }
    buf.version++;
    this.version++;
    return entry;
  }

  /** Forget a long-open tab's oldest lines (scrolling up asks the server for them again). */
  _trim(buf) {
    const dropped = buf.lines.splice(0, buf.lines.length - KEEP_LINES);
    for (const line of dropped) if (line.msgid) buf.msgids.delete(line.msgid);
    buf.historyExhausted = false;
  }

  /**
   * Lines of a history batch, in their order, merged by time into what the buffer shows.
   * Lines sent within one millisecond share a time, so on a tie the history goes first: it
   * was asked for as what came before (BEFORE), or before what arrives live (LATEST).
   */
  mergeHistory(buf, batchLines) {
    const fresh = [];
    for (const line of batchLines) {
      if (line.msgid) {
        if (buf.msgids.has(line.msgid)) continue;
        buf.msgids.add(line.msgid);
      }
      fresh.push({ id: nextLineId++, history: true, ...line });
    }
    if (!fresh.length) return;
    const merged = [];
    let i = 0;
    for (const line of fresh) {
      while (i < buf.lines.length && buf.lines[i].time < line.time) merged.push(buf.lines[i++]);
      merged.push(line);
    }
    while (i < buf.lines.length) merged.push(buf.lines[i++]);
    buf.lines = merged;
    buf.version++;
    this.version++;
  }

  /** A line for the user to read (an error, a command's answer) in a given or the active buffer. */
  notice(text, { type = "info", now, buffer = null }) {
    const buf = buffer ? this.ensureBuffer(buffer) : this.activeBuffer();
    return this.addLine(buf, { time: now, type, nick: "", text });
  }

  /** Our own message, when the server will not echo it (no echo-message). */
  addOwnMessage(target, text, { action = false, notice = false, now }) {
    const buf = this.ensureBuffer(target);
    return this.addLine(buf, {
      time: now,
      type: action ? "action" : notice ? "notice" : "message",
      nick: this.nick,
      text,
      self: true,
    });
  }

  /** Every line a message adds, and what else it changes. `now` (ms) stamps untimed lines. */
  apply(msg, now) {
    const batchRef = msg.tags.batch;
    const batch = batchRef ? this.batches.get(batchRef) : null;
    const ctx = {
      now,
      time: parseTime(msg.tags.time, now),
      history: !!(batch && batch.type === "chathistory"),
      batch,
    };
    const handler = HANDLERS[msg.command];
    if (handler) handler(this, msg, ctx);
    else if (/^\d{3}$/.test(msg.command)) numeric(this, msg, ctx);
  }

  /** Everyone left every channel (the connection is gone): members are stale until rejoin. */
  disconnected() {
    for (const buf of this.buffers.values()) {
      if (buf.kind === "channel") {
        buf.joined = false;
        buf.members.clear();
        buf.version++;
      }
      buf.historyLoading = false;
    }
    this.batches.clear();
    this.pendingNames.clear();
    this.historyRequests.clear();
    this.version++;
  }

  /** A CHATHISTORY request is under way for `target` (the app sends it). */
  historyRequested(target, limit, kind) {
    const buf = this.buffer(target);
    if (buf) {
      buf.historyLoading = true;
      buf.version++;
    }
    this.historyRequests.set(this.fold(target), { limit, kind });
  }

  newestMsgid(buf) {
    for (let i = buf.lines.length - 1; i >= 0; i--) if (buf.lines[i].msgid) return buf.lines[i].msgid;
    return null;
  }

  totalUnread() {
    let n = 0;
    for (const buf of this.buffers.values()) n += buf.unread;
    return n;
  }
}

function parseTime(value, fallback) {
  if (!value) return fallback;
  const t = Date.parse(value);
  return Number.isNaN(t) ? fallback : t;
}

function lastParam(msg) {
  return msg.params.length ? msg.params[msg.params.length - 1] : "";
}

function sourceName(msg) {
  return msg.source ? msg.source.name : "";
}

/** A source that is a server, not a user (no user@host; before registration, no source). */
function fromServer(msg) {
  return !msg.source || (msg.source.user === null && msg.source.host === null && msg.source.name.includes("."));
}

// -- handlers ------------------------------------------------------------------------------
function onPrivmsg(state, msg, ctx) {
  let [target, text = ""] = msg.params;
  const nick = sourceName(msg);
  const self = state.isMe(nick);
  const notice = msg.command === "NOTICE";
  // STATUSMSG (PRIVMSG @#chan): the channel's buffer
  const statusChars = state.isupport.STATUSMSG || "";
  while (target && statusChars.includes(target[0]) && state.isChannel(target.slice(1))) target = target.slice(1);
  let bufName;
  if (state.isChannel(target)) bufName = target;
  else if (fromServer(msg) || (notice && state.nick === "")) bufName = SERVER_BUFFER;
  else if (self) bufName = target;
  else if (notice && !state.buffer(nick)) bufName = SERVER_BUFFER;
  else bufName = nick;
  let type = notice ? "notice" : "message";
  const ctcp = parseCTCP(text);
  if (ctcp) {
    if (ctcp.verb === "ACTION") {
      type = "action";
      text = ctcp.text;
    } else if (notice) {
      text = `CTCP ${ctcp.verb} reply: ${ctcp.text}`;
    } else {
      return; // other CTCP requests (VERSION, PING...) are not shown
    }
  }
  text = stripFormatting(text);
  const buf = state.ensureBuffer(bufName, bufName === SERVER_BUFFER ? "server" : null);
  const highlight = !self && !!state.nick && mentions(text, state.nick);
  const line = { time: ctx.time, type, nick, text, self, msgid: msg.tags.msgid, highlight, account: msg.tags.account };
  if (ctx.history) {
    // held until the batch ends, then merged in one go (see mergeHistory)
    if (!ctx.batch.pending.has(buf.key)) ctx.batch.pending.set(buf.key, []);
    ctx.batch.pending.get(buf.key).push(line);
  } else {
    state.addLine(buf, line);
  }
}

function mentions(text, nick) {
  const escaped = nick.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`(^|[^\\w-])${escaped}($|[^\\w-])`, "i").test(text);
}

function onJoin(state, msg, ctx) {
  const nick = sourceName(msg);
  const channel = msg.params[0];
  const buf = state.ensureBuffer(channel, "channel");
  if (state.isMe(nick)) {
    buf.joined = true;
    buf.name = channel;
    buf.members.clear();
    buf.historyExhausted = false;
  }
  buf.members.set(state.fold(nick), { nick, prefixes: "", away: false });
  if (!ctx.history) state.addLine(buf, { time: ctx.time, type: "join", nick, text: "", self: state.isMe(nick) });
  buf.version++;
}

function removeMember(state, buf, nick) {
  buf.members.delete(state.fold(nick));
  buf.version++;
}

function onPart(state, msg, ctx) {
  const nick = sourceName(msg);
  const buf = state.buffer(msg.params[0]);
  if (!buf) return;
  if (state.isMe(nick)) {
    buf.joined = false;
    buf.members.clear();
  } else {
    removeMember(state, buf, nick);
  }
  state.addLine(buf, { time: ctx.time, type: "part", nick, text: msg.params[1] || "", self: state.isMe(nick) });
}

function onKick(state, msg, ctx) {
  const [channel, victim, reason = ""] = msg.params;
  const buf = state.buffer(channel);
  if (!buf) return;
  if (state.isMe(victim)) {
    buf.joined = false;
    buf.members.clear();
  } else {
    removeMember(state, buf, victim);
  }
  state.addLine(buf, { time: ctx.time, type: "kick", nick: sourceName(msg), text: reason, target: victim });
}

function onQuit(state, msg, ctx) {
  const nick = sourceName(msg);
  const key = state.fold(nick);
  for (const buf of state.buffers.values()) {
    if (buf.members.has(key) || (buf.kind === "query" && buf.key === key)) {
      removeMember(state, buf, nick);
      state.addLine(buf, { time: ctx.time, type: "quit", nick, text: lastParam(msg) });
    }
  }
}

function onNick(state, msg, ctx) {
  const oldNick = sourceName(msg);
  const newNick = msg.params[0];
  const oldKey = state.fold(oldNick);
  const self = state.isMe(oldNick);
  if (self) state.nick = newNick;
  for (const buf of [...state.buffers.values()]) {
    const member = buf.members.get(oldKey);
    const isQuery = buf.kind === "query" && buf.key === oldKey;
    if (!member && !isQuery && !self) continue;
    if (member) {
      buf.members.delete(oldKey);
      buf.members.set(state.fold(newNick), { ...member, nick: newNick });
    }
    if (isQuery && !state.buffers.has(state.fold(newNick))) {
      state.buffers.delete(buf.key);
      buf.key = state.fold(newNick);
      buf.name = newNick;
      state.buffers.set(buf.key, buf);
      if (state.active === oldKey) state.active = buf.key;
    }
    if (member || isQuery || (self && buf.kind === "server")) {
      state.addLine(buf, { time: ctx.time, type: "nick", nick: oldNick, text: newNick, self });
    }
  }
}

function onTopic(state, msg, ctx) {
  const buf = state.buffer(msg.params[0]);
  if (!buf) return;
  buf.topic = stripFormatting(msg.params[1] || "");
  buf.topicBy = sourceName(msg);
  state.addLine(buf, { time: ctx.time, type: "topic", nick: sourceName(msg), text: buf.topic });
}

function onMode(state, msg, ctx) {
  const target = msg.params[0];
  const text = msg.params.slice(1).join(" ");
  if (!state.isChannel(target)) {
    state.addLine(state.buffer(SERVER_BUFFER), { time: ctx.time, type: "mode", nick: sourceName(msg), text: `${target} ${text}` });
    return;
  }
  const buf = state.buffer(target);
  if (!buf) return;
  const prefixes = state.prefixes;
  const prefixModes = prefixes.map((p) => p.mode).join("");
  const chanmodes = (state.isupport.CHANMODES || "b,k,l,imnst").split(",");
  for (const change of parseModeChanges(msg.params.slice(1), prefixModes, chanmodes)) {
    const p = prefixes.find((x) => x.mode === change.mode);
    if (!p || !change.arg) continue;
    const member = buf.members.get(state.fold(change.arg));
    if (!member) continue;
    let set = member.prefixes.replace(p.prefix, "");
    if (change.add) set += p.prefix;
    // keep the highest first, in PREFIX order
    member.prefixes = prefixes.map((x) => x.prefix).filter((c) => set.includes(c)).join("");
  }
  buf.version++;
  state.addLine(buf, { time: ctx.time, type: "mode", nick: sourceName(msg), text });
}

function onAway(state, msg) {
  const key = state.fold(sourceName(msg));
  const away = msg.params.length > 0;
  for (const buf of state.buffers.values()) {
    const m = buf.members.get(key);
    if (m) {
      m.away = away;
      buf.version++;
    }
  }
  state.version++;
}

function onBatch(state, msg) {
  const ref = msg.params[0] || "";
  if (ref.startsWith("+")) {
    const batch = { type: msg.params[1] || "", params: msg.params.slice(2), pending: new Map(), count: 0 };
    state.batches.set(ref.slice(1), batch);
    return;
  }
  const batch = state.batches.get(ref.slice(1));
  state.batches.delete(ref.slice(1));
  if (!batch || batch.type !== "chathistory") return;
  for (const [key, lines] of batch.pending) {
    const into = state.buffers.get(key);
    if (into) state.mergeHistory(into, lines);
  }
  const target = batch.params[0];
  const buf = target ? state.buffer(target) : null;
  const request = target ? state.historyRequests.get(state.fold(target)) : null;
  if (buf) {
    buf.historyLoading = false;
    // fewer lines than asked for, going back in time: there is nothing older
    if (request && (request.kind === "before" || request.kind === "latest")) {
      buf.historyExhausted = (batch.count || 0) < request.limit;
    }
    buf.version++;
    state.version++;
  }
  if (target) state.historyRequests.delete(state.fold(target));
}

function onError(state, msg, ctx) {
  state.addLine(state.buffer(SERVER_BUFFER), { time: ctx.time, type: "error", nick: "", text: lastParam(msg) });
}

/** FAIL/WARN/NOTE <command> <code> [<context>...] <description> (IRCv3 standard-replies). */
function onStandardReply(state, msg, ctx) {
  const [command = "", code = ""] = msg.params;
  const text = `${msg.command} ${command} ${code}: ${lastParam(msg)}`;
  state.addLine(state.activeBuffer(), {
    time: ctx.now,
    type: msg.command === "FAIL" ? "error" : "info",
    nick: "",
    text,
  });
  if (command === "CHATHISTORY") for (const buf of state.buffers.values()) buf.historyLoading = false;
}

/** REDACT <target> <msgid> [<reason>] (IRCv3 draft/message-redaction): a message withdrawn
 * by its sender or a channel operator. Its line stays, saying so instead of its text (the
 * view draws it again: buf.redrawn). */
function onRedact(state, msg) {
  const [target = "", msgid = "", reason = ""] = msg.params;
  const by = sourceName(msg);
  // a channel's; a private conversation's is the buffer of whichever party is not us
  const name = state.isChannel(target) || !state.isMe(target) ? target : by;
  const buf = state.buffer(name);
  const line = buf && buf.lines.find((l) => l.msgid === msgid);
  if (!line || line.redacted) return;
  line.redacted = { by, reason };
  line.text = "";
  buf.redrawn.add(line.id);
  buf.version++;
  state.version++;
}

/** The id of the first line of `buf` from someone else after `ms` (0: none is known). */
function firstAfter(buf, ms) {
  if (!ms) return null;
  const line = buf.lines.find((l) => l.time > ms && TALK.has(l.type) && !l.self);
  return line ? line.id : null;
}

/** MARKREAD <target> timestamp=<time>|* (IRCv3 read-marker): where our account has read
 * `target` up to, on this or another device (the server answers our own MARKREAD with it,
 * and tells our other connections). Lines up to there are no longer unread. */
function onMarkread(state, msg) {
  const [target = "", value = ""] = msg.params;
  const buf = state.buffer(target);
  const ms = value.startsWith("timestamp=") ? Date.parse(value.slice(10)) : NaN;
  if (!buf || !Number.isFinite(ms) || ms <= buf.readUpTo) return;
  buf.readUpTo = ms;
  if (buf.unread) {
    const unread = buf.lines.filter(
      (l) => l.id >= buf.firstUnreadId && TALK.has(l.type) && !l.self && !l.history && l.time > ms,
    );
    buf.unread = unread.length;
    buf.firstUnreadId = unread.length ? unread[0].id : null;
    if (!buf.unread) buf.highlight = false;
  }
  buf.version++;
  state.version++;
}

/** The time of the last line of `buf` from someone else, not yet marked read (0: none). */
export function unmarkedUpTo(buf) {
  for (let i = buf.lines.length - 1; i >= 0; i--) {
    const line = buf.lines[i];
    if (TALK.has(line.type) && !line.self) return line.time > buf.readUpTo ? line.time : 0;
  }
  return 0;
}

/** The msgid of our own last message in `buf` that can still be withdrawn, or null. */
export function lastOwnMsgid(buf) {
  for (let i = buf.lines.length - 1; i >= 0; i--) {
    const line = buf.lines[i];
    if (line.self && line.msgid && !line.redacted && ["message", "action", "notice"].includes(line.type)) {
      return line.msgid;
    }
  }
  return null;
}

function onInvite(state, msg, ctx) {
  state.notice(`${sourceName(msg)} invites ${msg.params[0]} to ${msg.params[1]}`, { now: ctx.time });
}

/** Count the lines of a history batch (to know when a BEFORE has reached the beginning). */
function countInBatch(handler) {
  return (state, msg, ctx) => {
    if (ctx.batch) ctx.batch.count = (ctx.batch.count || 0) + 1;
    handler(state, msg, ctx);
  };
}

// -- numerics ------------------------------------------------------------------------------
const RPL_WELCOME = "001";
const RPL_ISUPPORT = "005";
const RPL_NOTOPIC = "331";
const RPL_TOPIC = "332";
const RPL_TOPICWHOTIME = "333";
const RPL_NAMREPLY = "353";
const RPL_ENDOFNAMES = "366";
/** Numerics that are part of a conversation the user asked for (shown where they are). */
const ANSWERS = new Set([
  "301", "305", "306", "311", "312", "313", "314", "317", "318", "319", "320", "330", "335",
  "338", "369", "378", "379", "671", "276", "341", "324", "329", "367", "368", "321", "322",
  "323", "352", "315", "381", "900", "901", "903", "730", "731", "732", "733", "734",
]);
/** How the answers people read most (WHOIS, WHOWAS, LIST) are worded; `a` is the numeric's
 * parameters after our nick. Others show their parameters as they are. */
const WORDING = {
  "301": (a) => `${a[0]} is away: ${a[1] || ""}`,
  "311": (a) => `${a[0]} is ${a[1]}@${a[2]} (${a[4] || ""})`,
  "314": (a) => `${a[0]} was ${a[1]}@${a[2]} (${a[4] || ""})`,
  "312": (a) => `${a[0]} is on ${a[1]} (${a[2] || ""})`,
  "313": (a) => `${a[0]} ${a[1] || "is an IRC operator"}`,
  "317": (a) => `${a[0]} has been idle ${duration(Number(a[1]))}${a[2] && /^\d+$/.test(a[2]) ? `, signed on ${new Date(Number(a[2]) * 1000).toLocaleString()}` : ""}`,
  "319": (a) => `${a[0]} is on ${a[1] || ""}`,
  "330": (a) => `${a[0]} is logged in as ${a[1]}`,
  "335": (a) => `${a[0]} is a bot`,
  "671": (a) => `${a[0]} ${a[1] || "is using a secure connection"}`,
  "276": (a) => `${a[0]} ${a[a.length - 1] || "has a client certificate"}`,
  "318": (a) => `End of WHOIS for ${a[0]}`,
  "369": (a) => `End of WHOWAS for ${a[0]}`,
  "322": (a) => `${a[0]} (${a[1]} ${a[1] === "1" ? "user" : "users"}): ${a[2] || ""}`,
  "323": () => "End of the channel list",
  "341": (a) => `Invited ${a[0]} to ${a[1]}`,
};

function duration(seconds) {
  if (!Number.isFinite(seconds)) return "a while";
  const parts = [];
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60]]) {
    if (seconds >= size) {
      parts.push(`${Math.floor(seconds / size)}${unit}`);
      seconds %= size;
    }
  }
  parts.push(`${seconds}s`);
  return parts.join(" ");
}

/** ERR_NICKLOCKED, ERR_SASLFAIL, ERR_SASLTOOLONG, ERR_SASLABORTED, RPL_SASLMECHS */
const SASL_FAILURES = new Set(["902", "904", "905", "906", "908"]);
/** Numerics the client handles or that carry nothing to read. */
const SILENT = new Set([RPL_TOPICWHOTIME, RPL_ENDOFNAMES, "730", "731", "732", "733", "734", "354"]);

function numeric(state, msg, ctx) {
  const code = msg.command;
  const args = msg.params.slice(1);
  switch (code) {
    case RPL_WELCOME:
      state.nick = msg.params[0];
      state.version++;
      break;
    case RPL_ISUPPORT:
      for (const token of args.slice(0, -1)) {
        const eq = token.indexOf("=");
        const key = (eq < 0 ? token : token.slice(0, eq)).toUpperCase();
        if (key.startsWith("-")) delete state.isupport[key.slice(1)];
        else state.isupport[key] = eq < 0 ? "" : token.slice(eq + 1);
      }
      return;
    case RPL_NOTOPIC: {
      const buf = state.buffer(args[0] || "");
      if (buf) buf.topic = "";
      return;
    }
    case RPL_TOPIC: {
      const buf = state.ensureBuffer(args[0], "channel");
      buf.topic = stripFormatting(args[1] || "");
      buf.version++;
      state.version++;
      return;
    }
    case RPL_TOPICWHOTIME: {
      const buf = state.buffer(args[0] || "");
      if (buf) buf.topicBy = parseSourceName(args[1] || "");
      return;
    }
    case RPL_NAMREPLY: {
      const channel = args[1];
      const key = state.fold(channel || "");
      if (!state.pendingNames.has(key)) state.pendingNames.set(key, new Map());
      const pending = state.pendingNames.get(key);
      const prefixChars = state.prefixes.map((p) => p.prefix).join("");
      for (const entry of (args[2] || "").split(" ")) {
        if (!entry) continue;
        const { prefixes, nick } = parseNamesEntry(entry, prefixChars);
        pending.set(state.fold(nick), { nick, prefixes, away: false });
      }
      return;
    }
    case RPL_ENDOFNAMES: {
      const key = state.fold(args[0] || "");
      const pending = state.pendingNames.get(key);
      state.pendingNames.delete(key);
      const buf = state.buffers.get(key);
      if (buf && pending) {
        for (const [k, m] of pending) {
          const old = buf.members.get(k);
          if (old) m.away = old.away;
        }
        buf.members = pending;
        buf.version++;
        state.version++;
      }
      return;
    }
    default:
      break;
  }
  if (SILENT.has(code)) return;
  const text = args.filter((a, i) => !(i === 0 && a === "*")).join(" ");
  const n = Number(code);
  if ((n >= 400 && n < 600) || SASL_FAILURES.has(code)) {
    state.addLine(state.activeBuffer(), { time: ctx.now, type: "error", nick: "", text: `${text} (${code})` });
    if (state.activeBuffer().historyLoading) state.activeBuffer().historyLoading = false;
  } else if (ANSWERS.has(code) || WORDING[code]) {
    const worded = WORDING[code] ? WORDING[code](args) : text;
    state.addLine(state.activeBuffer(), { time: ctx.now, type: "info", nick: "", text: worded });
  } else {
    state.addLine(state.buffer(SERVER_BUFFER), { time: ctx.time, type: "info", nick: "", text });
  }
}

function parseSourceName(text) {
  const bang = text.indexOf("!");
  return bang < 0 ? text : text.slice(0, bang);
}

const HANDLERS = {
  PRIVMSG: countInBatch(onPrivmsg),
  NOTICE: countInBatch(onPrivmsg),
  JOIN: onJoin,
  PART: onPart,
  KICK: onKick,
  QUIT: onQuit,
  NICK: onNick,
  TOPIC: onTopic,
  MODE: onMode,
  AWAY: onAway,
  BATCH: onBatch,
  ERROR: onError,
  FAIL: onStandardReply,
  WARN: onStandardReply,
  NOTE: onStandardReply,
  INVITE: onInvite,
  REDACT: onRedact,
  MARKREAD: onMarkread,
};
