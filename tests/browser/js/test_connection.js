// Registration, SASL, PING and reconnection (fastchat/webclient/irc/connection.js), against a
// fake WebSocket and fake timers.
import { eq, ok, test } from "./harness.js";
import { CONNECT_TIMEOUT_MS, Connection, backoffDelay, parseCapList, saslPlainPayload } from "../../../fastchat/webclient/irc/connection.js";

class FakeSocket {
  static instances = [];
  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.readyState = 0;
    this.sent = [];
    FakeSocket.instances.push(this);
  }
  send(line) {
    this.sent.push(line);
  }
  close() {
    this.readyState = 3;
  }
  open() {
    this.readyState = 1;
    this.onopen && this.onopen();
  }
  receive(...lines) {
    for (const data of lines) this.onmessage && this.onmessage({ data });
  }
  drop(code = 1006) {
    this.readyState = 3;
    this.onclose && this.onclose({ code, reason: "" });
  }
}

function fakeTimers() {
  const timers = new Map();
  let next = 1;
  return {
    timers,
    setTimeout(fn, ms) {
      timers.set(next, { fn, ms });
      return next++;
    },
    clearTimeout(id) {
      timers.delete(id);
    },
    fireNext(ms = null) {
      const [id, t] = [...timers.entries()].find(([, t]) => ms === null || t.ms === ms) || [];
      if (id === undefined) throw new Error("no timer");
      timers.delete(id);
      t.fn();
      return t.ms;
    },
  };
}

function connection(options = {}) {
  FakeSocket.instances = [];
  const timers = fakeTimers();
  const conn = new Connection({ url: "ws://h/", nick: "alice", WebSocket: FakeSocket, timers, ...options });
  const statuses = [];
  const messages = [];
  conn.addEventListener("status", (e) => statuses.push(e.detail.state));
  conn.addEventListener("message", (e) => messages.push(e.detail.command));
  conn.connect();
  return { conn, timers, statuses, messages, ws: () => FakeSocket.instances.at(-1) };
}

test("registration: CAP LS 302, then NICK, USER and one CAP REQ of what is offered, then CAP END", () => {
  const { conn, ws, statuses } = connection();
  eq(ws().protocols, ["text.ircv3.net"]);
  ws().open();
  eq(ws().sent, ["CAP LS 302"]);
  ws().receive(":srv CAP * LS * :server-time echo-message unknown-cap", ":srv CAP * LS :batch draft/chathistory sasl=PLAIN");
  eq(ws().sent.slice(1), [
    "NICK alice",
    "USER webchat 0 * :fastchat web user",
    "CAP REQ :server-time echo-message batch draft/chathistory",
  ]);
  ws().receive(":srv CAP alice ACK :server-time echo-message batch draft/chathistory");
  eq(ws().sent.at(-1), "CAP END");
  ws().receive(":srv 001 alice :Welcome", ":srv 005 alice NETWORK=fastnet :are supported");
  eq(conn.state, "registered");
  eq(conn.isupport.NETWORK, "fastnet");
  ok(conn.has("echo-message"));
  eq(conn.chathistoryCap, "draft/chathistory");
  eq(statuses, ["connecting", "registering", "registered"]);
});

test("SASL PLAIN with a password when sasl is offered", () => {
  const { ws } = connection({ password: "pässword" });
  ws().open();
  ws().receive(":srv CAP * LS :sasl=PLAIN,EXTERNAL server-time");
  eq(ws().sent.at(-1), "CAP REQ :server-time sasl");
  ok(!ws().sent.some((l) => l.startsWith("PASS")), "no PASS");
  ws().receive(":srv CAP alice ACK :server-time sasl");
  eq(ws().sent.at(-1), "AUTHENTICATE PLAIN");
  ws().receive("AUTHENTICATE +");
  eq(ws().sent.at(-1), "AUTHENTICATE " + saslPlainPayload("alice", "pässword"));
  ws().receive(":srv 903 alice :SASL authentication successful");
  eq(ws().sent.at(-1), "CAP END");
});

test("SASL failure ends negotiation and says why", () => {
  const { conn, ws } = connection({ password: "wrong" });
  ws().open();
  ws().receive(":srv CAP * LS :sasl", ":srv CAP alice ACK :sasl", "AUTHENTICATE +");
  ws().receive(":srv 904 alice :SASL authentication failed");
  eq(ws().sent.at(-1), "CAP END");
  ok(conn.warning.includes("SASL"), "a warning, not an error: the session goes on");
});

test("a password without sasl on offer is sent as PASS, before NICK", () => {
  const { ws } = connection({ password: "sesame" });
  ws().open();
  ws().receive(":srv CAP * LS :server-time");
  eq(ws().sent.slice(1, 3), ["PASS sesame", "NICK alice"]);
});

test("the SASL PLAIN payload is base64 of UTF-8", () => {
  eq(saslPlainPayload("a", "b"), btoa("\0a\0b"));
  eq(atob(saslPlainPayload("a", "é")).length, 5, "é is two bytes");
});

test("a nick in use during registration: another one", () => {
  const { conn, ws } = connection();
  ws().open();
  ws().receive(":srv CAP * LS :", ":srv 433 * alice :Nickname is already in use");
  eq(ws().sent.at(-1), "NICK alice_");
  eq(conn.nick, "alice_");
  ws().receive(":srv 001 alice_ :Welcome");
  eq(conn.wantedNick, "alice");
});

test("PING is answered with PONG", () => {
  const { ws } = connection();
  ws().open();
  ws().receive("PING :token 1");
  eq(ws().sent.at(-1), "PONG :token 1");
});

test("a dropped connection is retried with growing delays; registration resets them", () => {
  const { conn, timers, ws, statuses } = connection();
  ws().open();
  ws().drop();
  eq(conn.state, "reconnecting");
  const first = [...timers.timers.values()].find((t) => t.ms < 60_000).ms;
  ok(first >= 750 && first <= 1250, `first delay ${first}`);
  timers.fireNext(first);
  eq(FakeSocket.instances.length, 2, "a new socket");
  ws().drop();
  const second = [...timers.timers.values()].find((t) => t.ms < 60_000).ms;
  ok(second >= 1500 && second <= 2500, `second delay ${second}`);
  timers.fireNext(second);
  ws().open();
  ws().receive(":srv CAP * LS :", ":srv 001 alice :Welcome");
  eq(conn.attempt, 0);
  ok(statuses.includes("reconnecting"));
});

test("/quit closes for good: no reconnection", () => {
  const { conn, timers, ws } = connection();
  ws().open();
  ws().receive(":srv CAP * LS :", ":srv 001 alice :Welcome");
  conn.quit("bye");
  eq(ws().sent.at(-1), "QUIT bye");
  eq(conn.state, "disconnected");
  eq([...timers.timers.values()].filter((t) => t.ms < 60_000).length, 0);
});

test("backoff doubles up to a minute, with jitter", () => {
  eq(backoffDelay(1, () => 0.5), 1000);
  eq(backoffDelay(2, () => 0.5), 2000);
  eq(backoffDelay(5, () => 0.5), 16000);
  eq(backoffDelay(30, () => 0.5), 60000);
  eq(backoffDelay(1, () => 0), 750);
  eq(backoffDelay(1, () => 1), 1250);
});

test("CAP lists with values", () => {
  eq(parseCapList("sasl=PLAIN,EXTERNAL  server-time draft/chathistory"), new Map([["sasl", "PLAIN,EXTERNAL"], ["server-time", ""], ["draft/chathistory", ""]]));
});

test("the keep-alive PINGs a silent server and gives up on one that stays silent", () => {
  const { conn, timers, ws } = connection();
  ws().open();
  ws().receive(":srv CAP * LS :", ":srv 001 alice :Welcome");
  timers.fireNext(60_000);
  eq(ws().sent.at(-1), "PING keepalive");
  timers.fireNext(30_000);
  eq(conn.state, "reconnecting");
  ok(conn.lastError.includes("stopped answering"));
});

test("after a /nick, a reconnection comes back with the new nick", () => {
  const { conn, ws, timers } = connection();
  ws().open();
  ws().receive(":srv CAP * LS :", ":srv 001 alice :Welcome", ":alice!u@h NICK :alicia");
  eq(conn.nick, "alicia");
  eq(conn.wantedNick, "alicia");
  ws().drop();
  timers.fireNext([...timers.timers.values()].find((t) => t.ms < 60_000).ms);
  ws().open();
  ws().receive(":srv CAP * LS :");
  ok(ws().sent.includes("NICK alicia"));
});

test("a connection that never gets to the welcome is given up on, and retried", () => {
  const { conn, timers, ws } = connection();
  ws().open();
  ws().receive(":srv CAP * LS :");
  timers.fireNext(CONNECT_TIMEOUT_MS);
  eq(conn.state, "reconnecting");
  ok(conn.lastError.includes("Timed out"));
  eq(ws().readyState, 3, "the socket is closed");
});

test("once welcomed, the connect timeout no longer applies", () => {
  const { conn, timers, ws } = connection();
  ws().open();
  ws().receive(":srv CAP * LS :", ":srv 001 alice :Welcome");
  ok(![...timers.timers.values()].some((t) => t.ms === CONNECT_TIMEOUT_MS), "timer cleared");
  eq(conn.state, "registered");
});

test("binary messages are read as UTF-8 lines", () => {
  const { ws, messages } = connection();
  eq(ws().binaryType, "arraybuffer");
  ws().open();
  ws().receive(new TextEncoder().encode(":srv CAP * LS :").buffer);
  ws().receive(new TextEncoder().encode(":bob!b@h PRIVMSG #a :héllo").buffer);
  eq(messages.at(-1), "PRIVMSG");
});
