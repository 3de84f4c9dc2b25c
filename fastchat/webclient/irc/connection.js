/**
 * One IRC connection over WebSocket (IRCv3 WebSocket transport: subprotocol text.ircv3.net,
 * one line per WebSocket message, no CRLF): registration with CAP negotiation and SASL
 * PLAIN, PING/PONG, a keep-alive, and reconnection with exponential backoff.
 *
 * Owns: the socket, the registration state machine, the negotiated capabilities and the
 * ISUPPORT tokens. Must never: keep chat state (buffers, members: state.js) or touch the DOM.
 *
 * Events (CustomEvent, `detail`): "message" (a parsed line, after registration handling),
 * "status" ({state, error, retryAt, attempt, warning}), "registered" ({nick}).
 * States: "connecting", "registering", "registered", "disconnected" (for good: a /quit, a
 * refused nick or a fatal error), "reconnecting" (waiting for the next attempt).
 */

import { formatMessage, parseISupport, parseMessage } from "./parser.js";

/** What this client can use, if the server offers it. */
export const WANTED_CAPS = [
  "server-time",
  "echo-message",
  "message-tags",
  "batch",
  "draft/chathistory",
  "chathistory",
  "multi-prefix",
  "away-notify",
  "account-notify",
  "extended-join",
  "setname",
  "chghost",
  "invite-notify",
  "cap-notify",
  "standard-replies",
  "draft/message-redaction",
  "draft/read-marker",
];

export const SUBPROTOCOLS = ["text.ircv3.net"];

const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 60_000;
/** With nothing received for this long, we PING; without an answer half as long, we give up. */
const KEEPALIVE_MS = 60_000;
/** From opening the socket to the welcome: a network that swallows packets is given up on. */
export const CONNECT_TIMEOUT_MS = 30_000;

/** The delay before reconnection attempt `attempt` (1, 2, ...): doubling, capped, with jitter. */
export function backoffDelay(attempt, random = Math.random) {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.max(0, attempt - 1));
  return Math.round(base * (0.75 + 0.5 * random()));
}

/** "CAP * LS :a b=c" value list -> Map name -> value ("" when none). */
export function parseCapList(text) {
  const caps = new Map();
  for (const item of text.split(" ")) {
    if (!item) continue;
    const eq = item.indexOf("=");
    caps.set(eq < 0 ? item : item.slice(0, eq), eq < 0 ? "" : item.slice(eq + 1));
  }
  return caps;
}

/** The base64 of SASL PLAIN's "authzid\0authcid\0password" (UTF-8). */
export function saslPlainPayload(account, password) {
  const bytes = new TextEncoder().encode("\0" + account + "\0" + password);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

export class Connection extends EventTarget {
  /**
   * @param {object} options url, nick, password (optional: SASL PLAIN when the server offers
   *   it, else PASS), account (SASL name, defaults to nick), realname, username;
   *   WebSocket (a constructor, for tests), timers ({setTimeout, clearTimeout}).
   */
  constructor(options) {
    super();
    this.options = { realname: "fastchat web user", ...options };
    this.WebSocketImpl = options.WebSocket || globalThis.WebSocket;
    this.timers = options.timers || globalThis;
    this.ws = null;
    this.state = "disconnected";
    this.attempt = 0;
    this.wantedNick = options.nick;
    this.nick = options.nick;
    this.caps = new Set(); // enabled
    this.availableCaps = new Map(); // offered: name -> value
    this.isupport = {};
    this.lastError = null;
    this.warning = null; // something to tell the user that did not stop the registration
    this._closedByUser = false;
    this._reconnectTimer = null;
    this._keepaliveTimer = null;
    this._connectTimer = null;
    this._awaitingPong = false;
    this._capLsDone = false;
    this._saslPending = false;
  }

  has(cap) {
    return this.caps.has(cap);
  }

  /** The negotiated chathistory capability's name, or null. */
  get chathistoryCap() {
    if (this.caps.has("draft/chathistory")) return "draft/chathistory";
    if (this.caps.has("chathistory")) return "chathistory";
    return null;
  }

  connect() {
    this._closedByUser = false;
    this.timers.clearTimeout(this._reconnectTimer);
    this._reconnectTimer = null;
    this._open();
  }

  /** A /quit: say goodbye, close, and do not come back. */
  quit(reason = "") {
    this._closedByUser = true;
    this.timers.clearTimeout(this._reconnectTimer);
    if (this.ws && this.ws.readyState === 1) this.send("QUIT", reason || "Leaving");
    this._closeSocket();
    this._setState("disconnected");
  }

  /** Reconnect at once (the status line's "Reconnect now", or the browser coming online). */
  reconnectNow() {
    if (this.state === "reconnecting" || this.state === "disconnected") {
      this.timers.clearTimeout(this._reconnectTimer);
      this._reconnectTimer = null;
      this._closedByUser = false;
      this._open();
    }
  }

  /** send("PRIVMSG", "#a", "hi") or send({command, params, tags}). False if not connected. */
  send(commandOrMessage, ...params) {
    const msg =
      typeof commandOrMessage === "string"
        ? { command: commandOrMessage, params }
        : commandOrMessage;
    if (!this.ws || this.ws.readyState !== 1) return false;
    this.ws.send(formatMessage(msg));
    return true;
  }

  /** A raw line typed by the user (/quote). */
  sendRaw(line) {
    if (!this.ws || this.ws.readyState !== 1) return false;
    this.ws.send(line);
    return true;
  }

  // -- the socket ------------------------------------------------------------------------------
  _open() {
    this._closeSocket();
    this.caps = new Set();
    this.availableCaps = new Map();
    this.isupport = {};
    this.nick = this.wantedNick;
    this._capLsDone = false;
    this._saslPending = false;
    this.lastError = null;
    this.warning = null;
    this._setState("connecting");
    let ws;
    try {
      ws = new this.WebSocketImpl(this.options.url, SUBPROTOCOLS);
    } catch (err) {
      this.lastError = "Cannot connect to " + this.options.url + ": " + err.message;
      this._scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.binaryType = "arraybuffer"; // a binary message (binary.ircv3.net) decodes as UTF-8
    this._connectTimer = this.timers.setTimeout(() => {
      if (ws !== this.ws || this.state === "registered") return;
      this.lastError = "Timed out connecting to " + this.options.url;
      this._scheduleReconnect();
    }, CONNECT_TIMEOUT_MS);
    ws.onopen = () => {
      if (ws !== this.ws) return;
      this._setState("registering");
      this.send("CAP", "LS", "302");
      this._armKeepalive();
    };
    ws.onmessage = (event) => {
      if (ws !== this.ws) return;
      this._armKeepalive();
      const data = typeof event.data === "string" ? event.data : new TextDecoder().decode(event.data);
      // one line per message, but tolerate a server that sends CRLF-terminated batches
      for (const line of data.split(/\r?\n/)) {
        if (line) this._receive(line);
      }
    };
    ws.onclose = (event) => {
      if (ws !== this.ws) return;
      this.ws = null;
      this.timers.clearTimeout(this._keepaliveTimer);
      this.timers.clearTimeout(this._connectTimer);
      if (!this.lastError && event && event.code && event.code !== 1000 && event.code !== 1005) {
        this.lastError = `Connection closed (code ${event.code}${event.reason ? ": " + event.reason : ""})`;
      }
      if (this._closedByUser) this._setState("disconnected");
      else this._scheduleReconnect();
    };
    ws.onerror = () => {
      // the close event follows; its code says little more, so name the URL here
      if (ws === this.ws && !this.lastError && this.state !== "registered") {
        this.lastError = "Cannot reach " + this.options.url;
      }
    };
  }

  _closeSocket() {
    this.timers.clearTimeout(this._keepaliveTimer);
    this.timers.clearTimeout(this._connectTimer);
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        ws.close();
      } catch {
        // closing a socket that never opened may throw; it is gone either way
      }
    }
  }

  _scheduleReconnect() {
    this._closeSocket();
    this.attempt += 1;
    const delay = backoffDelay(this.attempt);
    this._setState("reconnecting", { retryAt: Date.now() + delay });
    this._reconnectTimer = this.timers.setTimeout(() => {
      this._reconnectTimer = null;
      this._open();
    }, delay);
  }

  _armKeepalive() {
    this.timers.clearTimeout(this._keepaliveTimer);
    this._awaitingPong = false;
    this._keepaliveTimer = this.timers.setTimeout(() => this._keepaliveTick(), KEEPALIVE_MS);
  }

  _keepaliveTick() {
    if (!this.ws) return;
    if (this._awaitingPong) {
      this.lastError = "The server stopped answering";
      const ws = this.ws;
      this._closeSocket();
      if (ws) this._scheduleReconnect();
      return;
    }
    this._awaitingPong = true;
    this.send("PING", "keepalive");
    this._keepaliveTimer = this.timers.setTimeout(() => this._keepaliveTick(), KEEPALIVE_MS / 2);
  }

  _setState(state, extra = {}) {
    this.state = state;
    this.dispatchEvent(
      new CustomEvent("status", {
        detail: { state, error: this.lastError, attempt: this.attempt, ...extra },
      }),
    );
  }

  // -- registration ----------------------------------------------------------------------------
  _receive(line) {
    let msg;
    try {
      msg = parseMessage(line);
    } catch {
      return; // a line with no command carries nothing to show
    }
    switch (msg.command) {
      case "PING":
        this.send("PONG", ...msg.params);
        return;
      case "CAP":
        this._onCap(msg);
        break;
      case "AUTHENTICATE":
        if (msg.params[0] === "+" && this._saslPending) {
          const account = this.options.account || this.wantedNick;
          this.send("AUTHENTICATE", saslPlainPayload(account, this.options.password));
        }
        break;
      case "903": // RPL_SASLSUCCESS
      case "907": // ERR_SASLALREADY
        if (this._saslPending) this._endCap();
        break;
      case "902":
      case "904":
      case "905":
      case "906":
      case "908":
        if (this._saslPending) {
          // not fatal: the session goes on, logged in to no account, and says so
          this.warning = "SASL login failed: " + (msg.params[msg.params.length - 1] || "");
          this._endCap();
        }
        break;
      case "001":
        this.timers.clearTimeout(this._connectTimer);
        this.nick = msg.params[0];
        this.attempt = 0;
        this.lastError = null;
        this._setState("registered", { warning: this.warning });
        this.dispatchEvent(new CustomEvent("registered", { detail: { nick: this.nick } }));
        break;
      case "005":
        Object.assign(this.isupport, parseISupport(msg.params));
        break;
      case "NICK":
        if (msg.source && msg.source.name === this.nick) {
          this.nick = msg.params[0];
          // the nick to come back with after a reconnection is the one we have now
          if (this.state === "registered") this.wantedNick = this.nick;
        }
        break;
      case "432": // ERR_ERRONEUSNICKNAME
      case "433": // ERR_NICKNAMEINUSE
      case "436":
        if (this.state === "registering") {
          // a nick in use (our own previous connection, not yet gone): take another for now;
          // the app asks for the wanted one back when it is free (MONITOR)
          if (msg.command === "432") {
            this.lastError = "The server refused the nick " + JSON.stringify(this.nick);
            this._closedByUser = true;
            this._closeSocket();
            this._setState("disconnected");
            return;
          }
          this.nick = this.nick.length < 12 ? this.nick + "_" : this.nick.slice(0, -3) + Math.floor(Math.random() * 1000);
          this.send("NICK", this.nick);
        }
        break;
      case "464": // ERR_PASSWDMISMATCH
        this.lastError = "Wrong server password";
        this._closedByUser = true;
        break;
      case "ERROR":
        this.lastError = msg.params[0] || "Closed by the server";
        break;
      case "PONG":
        this._awaitingPong = false;
        if (msg.params[msg.params.length - 1] === "keepalive") return;
        break;
      default:
        break;
    }
    this.dispatchEvent(new CustomEvent("message", { detail: msg }));
  }

  _onCap(msg) {
    const sub = (msg.params[1] || "").toUpperCase();
    const args = msg.params.slice(2);
    if (sub === "LS") {
      const more = args.length > 1 && args[0] === "*";
      for (const [k, v] of parseCapList(args[args.length - 1] || "")) this.availableCaps.set(k, v);
      if (!more && !this._capLsDone) {
        this._capLsDone = true;
        this._register();
      }
    } else if (sub === "ACK") {
      for (const name of (args[args.length - 1] || "").split(" ")) {
        if (!name) continue;
        if (name.startsWith("-")) this.caps.delete(name.slice(1));
        else this.caps.add(name);
      }
      if (this.state === "registering") {
        if (this.caps.has("sasl") && this._wantsSasl()) {
          this._saslPending = true;
          this.send("AUTHENTICATE", "PLAIN");
        } else {
          this._endCap();
        }
      }
    } else if (sub === "NAK") {
      if (this.state === "registering") this._endCap();
    } else if (sub === "NEW") {
      const offered = parseCapList(args[args.length - 1] || "");
      for (const [k, v] of offered) this.availableCaps.set(k, v);
      const want = [...offered.keys()].filter((c) => WANTED_CAPS.includes(c) && !this.caps.has(c));
      if (want.length) this.send("CAP", "REQ", want.join(" "));
    } else if (sub === "DEL") {
      for (const name of (args[args.length - 1] || "").split(" ")) {
        this.availableCaps.delete(name);
        this.caps.delete(name);
      }
    }
  }

  _wantsSasl() {
    if (!this.options.password) return false;
    const mechs = this.availableCaps.get("sasl");
    return mechs !== undefined && (mechs === "" || mechs.split(",").includes("PLAIN"));
  }

  _register() {
    if (this.options.password && !this._wantsSasl()) this.send("PASS", this.options.password);
    this.send("NICK", this.nick);
    this.send("USER", this.options.username || "webchat", "0", "*", this.options.realname);
    const want = WANTED_CAPS.filter((c) => this.availableCaps.has(c));
    if (this._wantsSasl()) want.push("sasl");
    if (want.length) this.send("CAP", "REQ", want.join(" "));
    else this._endCap();
  }

  _endCap() {
    this._saslPending = false;
    this.send("CAP", "END");
  }
}
