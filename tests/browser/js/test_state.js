// The chat state (fastchat/webclient/state.js), fed transcripts of server lines.
import { eq, ok, test } from "./harness.js";
import { parseMessage } from "../../../fastchat/webclient/irc/parser.js";
import { ChatState, MAX_LINES, SERVER_BUFFER, unmarkedUpTo } from "../../../fastchat/webclient/state.js";

const T0 = Date.parse("2026-11-26T10:00:00.000Z");

/** A state logged in as `nick`, fed each line (one ms apart when they carry no time). */
function feed(state, ...lines) {
  let now = T0;
  for (const line of lines) state.apply(parseMessage(line), (now += 1));
  return state;
}

function registered(nick = "me") {
  return feed(
    new ChatState(),
    `:srv 001 ${nick} :Welcome`,
    `:srv 005 ${nick} PREFIX=(ov)@+ CHANTYPES=#& CHANMODES=b,k,l,imnst CASEMAPPING=rfc1459 STATUSMSG=@+ :are supported`,
  );
}

const texts = (buf) => buf.lines.map((l) => `${l.type}:${l.nick}:${l.text}`);

test("welcome sets the nick; other numerics go to the server buffer", () => {
  const s = feed(registered("alice"), ":srv 372 alice :- hello motd");
  eq(s.nick, "alice");
  eq(s.buffer(SERVER_BUFFER).lines.at(-1).text, "- hello motd");
});

test("own JOIN opens the channel; NAMES with multi-prefix fills the members", () => {
  const s = feed(
    registered(),
    ":me!u@h JOIN #Lobby",
    ":srv 332 me #lobby :Welcome here",
    ":srv 353 me = #lobby :@+op +voice me plain",
    ":srv 366 me #lobby :End of /NAMES list.",
  );
  const buf = s.buffer("#LOBBY");
  ok(buf && buf.joined, "joined");
  eq(buf.kind, "channel");
  eq(buf.topic, "Welcome here");
  eq(s.sortedMembers(buf).map((m) => m.prefixes + m.nick), ["@+op", "+voice", "me", "plain"]);
});

test("MODE +o/-v changes prefixes in PREFIX order; other modes take their arguments", () => {
  const s = feed(
    registered(),
    ":me!u@h JOIN #a",
    ":srv 353 me = #a :me bob carol",
    ":srv 366 me #a :End",
    ":me!u@h MODE #a +vlo bob 10 bob",
    ":me!u@h MODE #a +k-o secret bob",
  );
  const buf = s.buffer("#a");
  eq(buf.members.get("bob").prefixes, "+");
  s.apply(parseMessage(":me!u@h MODE #a +o bob"), T0);
  eq(buf.members.get("bob").prefixes, "@+");
  eq(s.sortedMembers(buf)[0].nick, "bob");
});

test("others joining, parting, quitting, changing nick", () => {
  const s = feed(
    registered(),
    ":me!u@h JOIN #a",
    ":bob!b@h JOIN #a",
    ":carol!c@h JOIN #a",
    ":bob!b@h NICK Robert",
    ":carol!c@h PART #a :bye",
    ":Robert!b@h QUIT :gone",
  );
  const buf = s.buffer("#a");
  eq([...buf.members.values()].map((m) => m.nick), ["me"]);
  eq(texts(buf).slice(1), ["join:bob:", "join:carol:", "nick:bob:Robert", "part:carol:bye", "quit:Robert:gone"]);
});

test("own NICK changes our nick and renames nothing else", () => {
  const s = feed(registered(), ":me!u@h JOIN #a", ":me!u@h NICK me2");
  eq(s.nick, "me2");
  ok(s.buffer("#a").members.has("me2"));
});

test("messages: channel, private (a query buffer), server notices", () => {
  const s = feed(
    registered(),
    ":me!u@h JOIN #a",
    ":bob!b@h PRIVMSG #a :hello me",
    ":bob!b@h PRIVMSG me :psst",
    ":srv NOTICE me :server says",
    ":NickServ!s@services NOTICE me :identify",
  );
  eq(texts(s.buffer("#a")).at(-1), "message:bob:hello me");
  ok(s.buffer("#a").lines.at(-1).highlight, "our nick highlights");
  eq(s.buffer("bob").kind, "query");
  eq(texts(s.buffer("bob")), ["message:bob:psst"]);
  eq(s.buffer(SERVER_BUFFER).lines.slice(-2).map((l) => l.text), ["server says", "identify"]);
});

test("echo-message: our own message goes to its target's buffer, once per msgid", () => {
  const s = feed(
    registered(),
    "@msgid=1;time=2026-11-26T10:00:01.000Z :me!u@h PRIVMSG bob :hi bob",
    "@msgid=2;time=2026-11-26T10:00:02.000Z :me!u@h PRIVMSG me :note to self",
    "@msgid=2;time=2026-11-26T10:00:02.000Z :me!u@h PRIVMSG me :note to self",
  );
  eq(texts(s.buffer("bob")), ["message:me:hi bob"]);
  ok(s.buffer("bob").lines[0].self, "marked as ours");
  eq(s.buffer("me").lines.length, 1, "self-message shown once");
  eq(s.buffer("bob").unread, 0, "own messages are never unread");
});

test("server-time orders lines; history goes above, and repeats are dropped", () => {
  const s = feed(
    registered(),
    ":me!u@h JOIN #a",
    "@msgid=c;time=2026-11-26T10:05:00.000Z :bob!b@h PRIVMSG #a :third",
    "@batch=h1 BATCH +h1 chathistory #a",
    "@batch=h1;msgid=a;time=2026-11-26T09:00:00.000Z :bob!b@h PRIVMSG #a :first",
    "@batch=h1;msgid=b;time=2026-11-26T09:30:00.000Z :bob!b@h PRIVMSG #a :second",
    "@batch=h1;msgid=c;time=2026-11-26T10:05:00.000Z :bob!b@h PRIVMSG #a :third",
    "BATCH -h1",
  );
  const buf = s.buffer("#a");
  eq(buf.lines.filter((l) => l.type === "message").map((l) => l.text), ["first", "second", "third"]);
  ok(buf.lines[0].history, "history lines are marked");
  eq(buf.lines[0].time, Date.parse("2026-11-26T09:00:00.000Z"));
});

test("history lines sharing a millisecond with shown lines go above them, in their order", () => {
  const t = "2026-11-26T10:00:00.000Z";
  const s = feed(registered(), ":me!u@h JOIN #a");
  feed(s, ...[3, 4, 5].map((i) => `@msgid=m${i};time=${t} :bob!b@h PRIVMSG #a :line ${i}`));
  feed(
    s,
    "BATCH +b chathistory #a",
    ...[0, 1, 2].map((i) => `@batch=b;msgid=m${i};time=${t} :bob!b@h PRIVMSG #a :line ${i}`),
    "BATCH -b",
  );
  eq(s.buffer("#a").lines.filter((l) => l.type === "message").map((l) => l.text), [0, 1, 2, 3, 4, 5].map((i) => `line ${i}`));
});

test("a BEFORE batch shorter than asked for means the beginning was reached", () => {
  const s = feed(registered(), ":me!u@h JOIN #a");
  s.historyRequested("#a", 50, "before");
  ok(s.buffer("#a").historyLoading);
  feed(s, "BATCH +x chathistory #a", "@batch=x;msgid=z :bob!b@h PRIVMSG #a :old", "BATCH -x");
  ok(!s.buffer("#a").historyLoading, "loading done");
  ok(s.buffer("#a").historyExhausted, "exhausted");
  s.historyRequested("#a", 1, "latest-after");
  feed(s, "BATCH +y chathistory #a", "BATCH -y");
  ok(s.buffer("#a").historyExhausted, "a catch-up does not change it");
});

test("unread counts: only others' talk in tabs not shown; highlights in queries", () => {
  const s = feed(registered(), ":me!u@h JOIN #a", ":me!u@h JOIN #b");
  s.setActive("#a");
  feed(
    s,
    ":bob!b@h PRIVMSG #a :seen",
    ":bob!b@h PRIVMSG #b :one",
    ":bob!b@h PRIVMSG #b :two",
    ":bob!b@h JOIN #b",
    ":me!u@h PRIVMSG #b :mine",
    ":carol!c@h PRIVMSG me :hey",
  );
  eq(s.buffer("#a").unread, 0);
  eq(s.buffer("#b").unread, 2);
  ok(!s.buffer("#b").highlight);
  eq(s.buffer("carol").unread, 1);
  ok(s.buffer("carol").highlight);
  eq(s.totalUnread(), 3);
  s.setActive("#b");
  eq(s.buffer("#b").unread, 0);
  feed(s, "@batch=q BATCH +q chathistory #a", "@batch=q;msgid=m :bob!b@h PRIVMSG #a :from history", "BATCH -q");
  eq(s.buffer("#a").unread, 0, "history is never unread");
});

test("CTCP ACTION is an action; other CTCP requests are not shown", () => {
  const s = feed(registered(), ":me!u@h JOIN #a", ":bob!b@h PRIVMSG #a :\x01ACTION waves\x01", ":bob!b@h PRIVMSG #a :\x01VERSION\x01");
  eq(texts(s.buffer("#a")).slice(1), ["action:bob:waves"]);
});

test("STATUSMSG lines go to the channel", () => {
  const s = feed(registered(), ":me!u@h JOIN #a", ":bob!b@h PRIVMSG @#a :ops only");
  eq(texts(s.buffer("#a")).at(-1), "message:bob:ops only");
});

test("TOPIC, KICK of us, and our PART", () => {
  const s = feed(
    registered(),
    ":me!u@h JOIN #a",
    ":me!u@h JOIN #b",
    ":bob!b@h TOPIC #a :new topic",
    ":bob!b@h KICK #a me :out",
    ":me!u@h PART #b",
  );
  eq(s.buffer("#a").topic, "new topic");
  ok(!s.buffer("#a").joined);
  ok(!s.buffer("#b").joined);
  eq(s.buffer("#a").members.size, 0);
});

test("errors and FAIL go to the active buffer", () => {
  const s = feed(registered(), ":me!u@h JOIN #a");
  s.setActive("#a");
  feed(s, ":srv 401 me nobody :No such nick/channel", "FAIL CHATHISTORY INVALID_TARGET #x :No");
  const [a, b] = s.buffer("#a").lines.slice(-2);
  eq([a.type, a.text], ["error", "nobody No such nick/channel (401)"]);
  eq([b.type, b.text], ["error", "FAIL CHATHISTORY INVALID_TARGET: No"]);
});

test("away-notify dims a member", () => {
  const s = feed(registered(), ":me!u@h JOIN #a", ":bob!b@h JOIN #a", ":bob!b@h AWAY :lunch");
  ok(s.buffer("#a").members.get("bob").away);
  feed(s, ":bob!b@h AWAY");
  ok(!s.buffer("#a").members.get("bob").away);
});

test("a query follows its partner's nick change", () => {
  const s = feed(registered(), ":bob!b@h PRIVMSG me :hi", ":bob!b@h NICK bobby");
  ok(!s.buffer("bob"));
  eq(s.buffer("bobby").name, "bobby");
});

test("disconnected: members are stale, channels not joined", () => {
  const s = feed(registered(), ":me!u@h JOIN #a", ":bob!b@h JOIN #a");
  s.disconnected();
  ok(!s.buffer("#a").joined);
  eq(s.buffer("#a").members.size, 0);
  eq(s.buffer("#a").lines.length, 2, "lines are kept");
});

test("without echo-message, our own message is added locally", () => {
  const s = feed(registered(), ":me!u@h JOIN #a");
  s.addOwnMessage("#a", "hello", { now: T0 + 10 });
  eq(texts(s.buffer("#a")).at(-1), "message:me:hello");
});

test("closing a tab returns to the server buffer", () => {
  const s = feed(registered(), ":bob!b@h PRIVMSG me :hi");
  s.setActive("bob");
  s.closeBuffer("BOB");
  eq(s.active, SERVER_BUFFER);
  ok(!s.buffer("bob"));
});

test("the new-messages marker goes above the first unread line of a tab on opening it", () => {
  const s = feed(registered(), ":me!u@h JOIN #a", ":me!u@h JOIN #b");
  s.setActive("#a");
  feed(s, ":bob!b@h PRIVMSG #b :old", ":carol!c@h JOIN #b");
  s.setActive("#b");
  s.setActive("#a");
  feed(s, ":bob!b@h PRIVMSG #b :new one", ":bob!b@h PRIVMSG #b :new two");
  const firstNew = s.buffer("#b").lines.find((l) => l.text === "new one");
  s.setActive("#b");
  eq(s.buffer("#b").markerBefore, firstNew.id);
  s.setActive("#a");
  s.setActive("#b");
  eq(s.buffer("#b").markerBefore, null, "nothing new: no marker");
});

test("while the page is hidden, the tab on screen collects unread lines", () => {
  const s = feed(registered(), ":me!u@h JOIN #a");
  s.setActive("#a");
  s.pageVisible = false;
  feed(s, ":bob!b@h PRIVMSG #a :while away");
  eq(s.buffer("#a").unread, 1);
  s.pageVisible = true;
  s.setActive("#a");
  eq(s.buffer("#a").unread, 0);
  ok(s.buffer("#a").markerBefore !== null);
});

test("a tab keeps a bounded number of lines; the oldest can be fetched again", () => {
  const s = feed(registered(), ":me!u@h JOIN #a");
  const buf = s.buffer("#a");
  buf.historyExhausted = true;
  for (let i = 0; i <= MAX_LINES; i++) {
    s.apply(parseMessage(`@msgid=x${i} :bob!b@h PRIVMSG #a :${i}`), T0 + 10 + i);
  }
  ok(buf.lines.length < MAX_LINES, `trimmed to ${buf.lines.length}`);
  eq(buf.lines.at(-1).text, String(MAX_LINES));
  ok(!buf.msgids.has("x0"), "a dropped line's msgid is forgotten: it may come back");
  ok(!buf.historyExhausted, "scrolling up asks again");
});

test("WHOIS answers are worded for people, in the active tab", () => {
  const s = feed(registered(), ":me!u@h JOIN #a");
  s.setActive("#a");
  feed(
    s,
    ":srv 311 me bob ~bob host.example * :Bob Builder",
    ":srv 319 me bob :@#a #b",
    ":srv 317 me bob 3725 1700000000 :seconds idle, signon time",
    ":srv 330 me bob bobacct :is logged in as",
    ":srv 318 me bob :End of /WHOIS list.",
  );
  eq(s.buffer("#a").lines.slice(-5).map((l) => l.text.replace(/, signed on .*/, "")), [
    "bob is ~bob@host.example (Bob Builder)",
    "bob is on @#a #b",
    "bob has been idle 1h 2m 5s",
    "bob is logged in as bobacct",
    "End of WHOIS for bob",
  ]);
});

test("REDACT withdraws a line in place: a channel's, and a conversation's either way", () => {
  const s = feed(
    registered(),
    ":me!u@h JOIN #c",
    "@msgid=x1 :bob!b@h PRIVMSG #c :spam",
    "@msgid=x2 :bob!b@h PRIVMSG #c :fine",
    "@msgid=d1 :bob!b@h PRIVMSG me :psst",
    "@msgid=d2 :me!u@h PRIVMSG bob :oops",
    ":op!o@h REDACT #c x1 :no spam",
    ":bob!b@h REDACT me d1",
    ":me!u@h REDACT bob d2",
    ":bob!b@h REDACT #c unknown",
  );
  const chan = s.buffer("#c");
  eq(chan.lines.find((l) => l.msgid === "x1").redacted, { by: "op", reason: "no spam" });
  eq(chan.lines.find((l) => l.msgid === "x1").text, "");
  eq(chan.lines.find((l) => l.msgid === "x2").text, "fine");
  ok(chan.redrawn.size === 1, "the view is told which line to draw again");
  const dm = s.buffer("bob");
  eq(dm.lines.map((l) => [l.msgid, !!l.redacted]), [["d1", true], ["d2", true]]);
});

test("MARKREAD from another device: lines up to it are read, and the marker goes after it", () => {
  const s = feed(
    registered(),
    ":me!u@h JOIN #c",
    ":me!u@h JOIN #d",
    "@time=2026-11-26T10:00:01.000Z :bob!b@h PRIVMSG #c :one",
    "@time=2026-11-26T10:00:02.000Z :bob!b@h PRIVMSG #c :two",
    "@time=2026-11-26T10:00:03.000Z :bob!b@h PRIVMSG #c :three",
  );
  s.setActive("#d");
  const c = s.buffer("#c");
  eq(c.unread, 3);
  feed(s, ":srv MARKREAD #c *", ":srv MARKREAD #c timestamp=2026-11-26T10:00:02.000Z");
  eq([c.unread, c.lines.find((l) => l.id === c.firstUnreadId).text], [1, "three"]);
  eq(unmarkedUpTo(c), Date.parse("2026-11-26T10:00:03.000Z"));
  feed(s, ":srv MARKREAD #c timestamp=2026-11-26T10:00:01.000Z"); // never back
  eq(c.readUpTo, Date.parse("2026-11-26T10:00:02.000Z"));
  feed(s, ":srv MARKREAD #c timestamp=2026-11-26T10:00:03.000Z");
  eq([c.unread, c.highlight, unmarkedUpTo(c)], [0, false, 0]);
  const d = s.buffer("#d"); // history from before the page: the marker after what was read
  s.mergeHistory(d, [
    { time: Date.parse("2026-11-26T09:00:00.000Z"), type: "message", nick: "bob", text: "old", self: false },
    { time: Date.parse("2026-11-26T09:30:00.000Z"), type: "message", nick: "bob", text: "new", self: false },
  ]);
  feed(s, ":srv MARKREAD #d timestamp=2026-11-26T09:10:00.000Z");
  s.setActive("#d");
  eq(d.lines.find((l) => l.id === d.markerBefore).text, "new");
});
