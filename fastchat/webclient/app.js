/**
 * The web client's entry point: the login form, then one connection, one chat state and the
 * views, wired together. Everything the user does goes through here; so does every line from
 * the server (state first, then the few things the client does in answer: join, history).
 *
 * Owns: the wiring, the saved session (localStorage: nick, server URL, open tabs;
 * sessionStorage: the password, for a reload only), keyboard shortcuts between tabs.
 * Must never: parse IRC (irc/), decide what a message means (state.js) or build nodes from
 * strings (ui/dom.js does it safely).
 */

import { Connection } from "./irc/connection.js";
import { ChatState, SERVER_BUFFER, unmarkedUpTo } from "./state.js";
import { COMMANDS, CommandError, messageLines, runInput } from "./commands.js";
import { renderBufferList } from "./ui/bufferlist.js";
import { renderMembers } from "./ui/members.js";
import { MessageView } from "./ui/messages.js";
import { Composer } from "./ui/composer.js";
import { StatusLine } from "./ui/status.js";
import { replaceChildren } from "./ui/dom.js";
import { linkify } from "./ui/format.js";

/** The least time between two MARKREADs for one tab (IRCv3 read-marker), in ms. */
const MARK_EVERY = 1500;

const SESSION_KEY = "fastchat.session";
const PASSWORD_KEY = "fastchat.password";
/** Lines asked for on joining, and per scroll to the top. */
const HISTORY_LATEST = 100;
const HISTORY_PAGE = 50;

const $ = (id) => document.getElementById(id);

export function defaultServerUrl(loc = location) {
  return `${loc.protocol === "https:" ? "wss:" : "ws:"}//${loc.host}/`;
}

function loadSession() {
  try {
    const saved = JSON.parse(localStorage.getItem(SESSION_KEY) || "null");
    if (saved && typeof saved.nick === "string") {
      return { ...saved, password: sessionStorage.getItem(PASSWORD_KEY) || "" };
    }
  } catch {
    // a damaged entry is forgotten
  }
  return null;
}

function saveSession(session) {
  const { password, ...rest } = session;
  localStorage.setItem(SESSION_KEY, JSON.stringify(rest));
  if (password) sessionStorage.setItem(PASSWORD_KEY, password);
  else sessionStorage.removeItem(PASSWORD_KEY);
}

class App {
  constructor() {
    this.session = null;
    this.conn = null;
    this.state = new ChatState();
    this.renderQueued = false;
    this.hideMembers = false;
    this.fromForm = false;
    this.everRegistered = false;
    this.reclaiming = null; // the nick we wait for (MONITOR) to take back
    this.drafts = new Map(); // buffer key -> unsent text
    this.isTouch = matchMedia("(pointer: coarse)").matches;
    this.narrow = matchMedia("(max-width: 760px)");

    this.messages = new MessageView($("messages"), $("message-list"), $("history-marker"), $("jump"), {
      onNeedHistory: (key) => this.requestOlderHistory(key),
      onChannel: (name) => this.goToChannel(name),
    });
    this.composer = new Composer($("composer"), $("input"), {
      onSubmit: (text) => this.submit(text),
      candidates: (word, atStart) => this.completionCandidates(word, atStart),
      onPage: (direction) => this.messages.page(direction),
    });
    this.status = new StatusLine($("status"), $("status-text"), $("status-action"), {
      onAction: (action) => (action === "reconnect" ? this.conn?.reconnectNow() : this.showLogin()),
    });

    $("login-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.login();
    });
    $("toggle-buffers").addEventListener("click", () => this.toggleDrawer("show-buffers"));
    $("toggle-members").addEventListener("click", () => {
      if (this.narrow.matches) this.toggleDrawer("show-members");
      else {
        this.hideMembers = !this.hideMembers;
        this.render();
      }
    });
    $("scrim").addEventListener("click", () => this.closeDrawers());
    document.addEventListener("keydown", (e) => this.onGlobalKey(e));
    document.addEventListener("visibilitychange", () => {
      // while the page is hidden, the tab on screen collects unread lines too (the title shows them)
      this.state.pageVisible = !document.hidden;
      if (!document.hidden) this.state.setActive(this.state.active);
      this.render();
    });
    window.addEventListener("online", () => this.conn?.reconnectNow());
    window.addEventListener("pagehide", () => {
      // leave at once, so a reload finds the nick free
      if (this.conn && this.conn.state === "registered") this.conn.send("QUIT", "Page closed");
    });
  }

  boot() {
    const saved = loadSession();
    $("login-url").value = saved?.url || defaultServerUrl();
    if (saved) $("login-nick").value = saved.nick;
    if (saved && saved.autoconnect) this.start(saved);
    else this.showLogin();
  }

  // -- login -------------------------------------------------------------------------------
  showLogin(error = "") {
    $("app").hidden = true;
    $("login").hidden = false;
    $("login-submit").disabled = false;
    $("login-error").hidden = !error;
    $("login-error").textContent = error;
    if (this.session) $("login-nick").value = this.conn?.wantedNick || this.session.nick;
    $("login-nick").focus();
  }

  login() {
    const nick = $("login-nick").value.trim();
    const url = $("login-url").value.trim() || defaultServerUrl();
    if (!nick) return;
    if (!/^wss?:\/\//.test(url)) {
      this.showLogin("The server URL must start with ws:// or wss://");
      return;
    }
    const previous = loadSession();
    const channels = previous && previous.nick === nick ? previous.channels || [] : [];
    this.start({ nick, url, password: $("login-password").value, channels, queries: [], autoconnect: true }, true);
  }

  /** Connect with `session`; `fromForm`: the user just filled in the form (a failure to
   * connect sends them back to it), rather than a saved session after a reload (retried). */
  start(session, fromForm = false) {
    if (this.conn) this.conn.quit();
    this.fromForm = fromForm;
    this.everRegistered = false;
    this.session = { ...session, autoconnect: true };
    saveSession(this.session);
    this.state = new ChatState();
    this.state.pageVisible = !document.hidden;
    for (const name of session.channels || []) this.state.ensureBuffer(name, "channel");
    for (const name of session.queries || []) this.state.ensureBuffer(name, "query");
    this.messages.bufKey = null;

    const conn = new Connection({ url: session.url, nick: session.nick, password: session.password });
    this.conn = conn;
    conn.addEventListener("message", (e) => this.onMessage(e.detail));
    conn.addEventListener("status", (e) => this.onStatus(e.detail));
    $("login").hidden = true;
    $("app").hidden = false;
    this.render();
    conn.connect();
    this.composer.focus();
  }

  onStatus(status) {
    if (status.state === "registered") this.everRegistered = true;
    if (status.state === "reconnecting" && !this.everRegistered && this.fromForm) {
      // the first try from the form failed (a wrong URL, the server down): back to the form
      const error = status.error || "Cannot connect";
      this.conn.quit();
      this.session.autoconnect = false;
      saveSession(this.session);
      this.showLogin(error);
      return;
    }
    this.status.update(status);
    if (status.state === "reconnecting" || status.state === "disconnected") {
      this.state.disconnected();
      if (status.error) this.state.notice(status.error, { type: "error", buffer: SERVER_BUFFER, now: Date.now() });
    }
    if (status.state === "disconnected" && this.conn && this.conn.lastError && !this.state.nick) {
      // refused before we ever got in (a bad nick, a wrong password): back to the form
      this.session.autoconnect = false;
      saveSession(this.session);
      this.showLogin(this.conn.lastError);
    }
    this.render();
  }

  // -- from the server ---------------------------------------------------------------------
  onMessage(msg) {
    const state = this.state;
    state.apply(msg, Date.now());
    const conn = this.conn;
    const selfSource = msg.source && state.isMe(msg.source.name);
    switch (msg.command) {
      case "001": {
        const channels = state.orderedBuffers().filter((b) => b.kind === "channel").map((b) => b.name);
        if (channels.length) conn.send("JOIN", channels.join(","));
        this.reclaiming = null;
        if (conn.nick !== conn.wantedNick) {
          // our nick is still held (by our own previous connection, most likely): watch it
          this.reclaiming = conn.wantedNick;
          conn.send("MONITOR", "+", conn.wantedNick);
        }
        break;
      }
      case "JOIN":
        if (selfSource) {
          const buf = state.buffer(msg.params[0]);
          if (state.active === SERVER_BUFFER) state.setActive(buf.key);
          this.requestLatestHistory(buf);
          this.saveTabs();
        }
        break;
      case "PART":
        // leaving a channel closes its tab (a kick leaves it open, to show why)
        if (selfSource) state.closeBuffer(msg.params[0]);
        this.saveTabs();
        break;
      case "KICK":
        this.saveTabs();
        break;
      case "NICK":
        if (selfSource || (msg.params[0] && state.isMe(msg.params[0]))) {
          // ours: a reload comes back with it; and a nick we were waiting for is ours now
          if (this.reclaiming) conn.send("MONITOR", "-", this.reclaiming);
          this.reclaiming = null;
          this.session.nick = conn.wantedNick;
          saveSession(this.session);
        }
        break;
      case "731": // RPL_MONOFFLINE: the nick we wanted is free again
        if (this.reclaiming && (msg.params[1] || "").split(",").some((n) => state.fold(n.split("!")[0]) === state.fold(this.reclaiming))) {
          conn.send("NICK", this.reclaiming);
        }
        break;
      default:
        break;
    }
    this.render();
  }

  /** At most `wanted`, and no more than the server gives (ISUPPORT CHATHISTORY; 0: no limit). */
  historyLimit(wanted) {
    const max = Number(this.conn.isupport.CHATHISTORY) || 0;
    return max > 0 ? Math.min(wanted, max) : wanted;
  }

  requestLatestHistory(buf) {
    if (!this.conn.chathistoryCap || !buf) return;
    const newest = this.state.newestMsgid(buf);
    const limit = this.historyLimit(HISTORY_LATEST);
    this.state.historyRequested(buf.name, limit, newest ? "latest-after" : "latest");
    this.conn.send("CHATHISTORY", "LATEST", buf.name, newest ? `msgid=${newest}` : "*", String(limit));
  }

  requestOlderHistory(key) {
    const buf = this.state.buffers.get(key);
    const conn = this.conn;
    if (!buf || !conn || conn.state !== "registered" || !conn.chathistoryCap) return;
    if (buf.kind === "channel" && !buf.joined) return;
    if (buf.historyLoading || buf.historyExhausted) return;
    const anchor = buf.lines.find((l) => l.msgid);
    if (!anchor) {
      if (buf.kind === "query") this.requestLatestHistory(buf);
      return;
    }
    const limit = this.historyLimit(HISTORY_PAGE);
    this.state.historyRequested(buf.name, limit, "before");
    conn.send("CHATHISTORY", "BEFORE", buf.name, `msgid=${anchor.msgid}`, String(limit));
    this.render();
  }

  saveTabs() {
    if (!this.session) return;
    const bufs = this.state.orderedBuffers();
    this.session.channels = bufs.filter((b) => b.kind === "channel" && b.joined).map((b) => b.name);
    this.session.queries = bufs.filter((b) => b.kind === "query").map((b) => b.name);
    saveSession(this.session);
  }

  // -- from the user -----------------------------------------------------------------------
  submit(text) {
    try {
      runInput(this.commandContext(), text);
    } catch (err) {
      if (!(err instanceof CommandError)) throw err;
      this.state.notice(err.message, { type: "error", now: Date.now() });
    }
    this.render();
  }

  commandContext() {
    const app = this;
    const conn = this.conn;
    const notConnected = () => new CommandError("Not connected: nothing was sent");
    return {
      state: this.state,
      has: (cap) => !!conn && conn.has(cap),
      send(command, ...params) {
        if (!conn || !conn.send(command, ...params)) throw notConnected();
      },
      sendRaw(line) {
        if (!conn || !conn.sendRaw(line)) throw notConnected();
      },
      say(target, text, opts = {}) {
        for (const line of messageLines(target, text, opts)) {
          if (!conn || !conn.send(line)) throw notConnected();
          if (!conn.has("echo-message")) app.state.addOwnMessage(target, line.text, { ...opts, now: Date.now() });
        }
      },
      open(name) {
        const buf = app.state.ensureBuffer(name);
        app.selectBuffer(buf.key);
        app.saveTabs();
      },
      close(name) {
        app.state.closeBuffer(name);
        app.saveTabs();
      },
      show(text, type = "info") {
        app.state.notice(text, { type, now: Date.now() });
      },
      clear() {
        const buf = app.state.activeBuffer();
        buf.lines = [];
        buf.msgids.clear();
        buf.historyExhausted = true;
        buf.version++;
      },
      quit(reason) {
        app.session.autoconnect = false;
        saveSession(app.session);
        conn?.quit(reason);
      },
    };
  }

  /** A click on a #channel in a line: its tab, joining it first if need be. */
  goToChannel(name) {
    const buf = this.state.buffer(name);
    if (!buf || !buf.joined) this.submit(`/join ${name}`);
    else this.selectBuffer(buf.key);
  }

  completionCandidates(word, atStart) {
    const state = this.state;
    if (atStart && word.startsWith("/")) return Object.keys(COMMANDS).map((c) => "/" + c);
    if (state.isChannel(word)) return state.orderedBuffers().filter((b) => b.kind === "channel").map((b) => b.name);
    const buf = state.activeBuffer();
    if (buf.kind === "channel") return [...buf.members.values()].map((m) => m.nick).filter((n) => !state.isMe(n));
    if (buf.kind === "query") return [buf.name];
    return [];
  }

  selectBuffer(key) {
    // each tab keeps what was typed in it and not sent
    const input = $("input");
    if (key !== this.state.active) {
      this.drafts.set(this.state.active, input.value);
      input.value = this.drafts.get(key) || "";
      this.drafts.delete(key);
    }
    this.state.setActive(key);
    this.closeDrawers();
    this.render();
    if (!this.isTouch) this.composer.focus();
  }

  onGlobalKey(e) {
    if ($("app").hidden) return;
    const bufs = this.state.orderedBuffers();
    const index = bufs.findIndex((b) => b.key === this.state.active);
    if (e.altKey && !e.ctrlKey && /^Digit[0-9]$/.test(e.code)) {
      const n = Number(e.code.slice(5));
      const target = bufs[n === 0 ? 9 : n - 1];
      if (target) {
        e.preventDefault();
        this.selectBuffer(target.key);
      }
    } else if ((e.altKey || e.ctrlKey) && (e.key === "ArrowUp" || e.key === "ArrowDown")) {
      e.preventDefault();
      const step = e.key === "ArrowUp" ? -1 : 1;
      this.selectBuffer(bufs[(index + step + bufs.length) % bufs.length].key);
    } else if (e.key === "Escape") {
      this.closeDrawers();
    }
  }

  toggleDrawer(name) {
    const app = $("app");
    const other = name === "show-buffers" ? "show-members" : "show-buffers";
    app.classList.remove(other);
    app.classList.toggle(name);
    $("scrim").hidden = !app.classList.contains(name);
    $("toggle-buffers").setAttribute("aria-expanded", String(app.classList.contains("show-buffers")));
    $("toggle-members").setAttribute("aria-expanded", String(app.classList.contains("show-members")));
  }

  closeDrawers() {
    $("app").classList.remove("show-buffers", "show-members");
    $("scrim").hidden = true;
    $("toggle-buffers").setAttribute("aria-expanded", "false");
    $("toggle-members").setAttribute("aria-expanded", "false");
  }

  // -- drawing -----------------------------------------------------------------------------
  /** Draw on the next frame, once however many lines arrived meanwhile. */
  /** IRCv3 read-marker: tell the server (and through it our other devices) how far the
   * tab on screen has been read, at most every MARK_EVERY ms, and once more after that. */
  markRead(buf) {
    const conn = this.conn;
    if (!conn || conn.state !== "registered" || !conn.has("draft/read-marker")) return;
    if (document.hidden || buf.kind === "server") return;
    const upTo = unmarkedUpTo(buf);
    if (!upTo || upTo <= (buf.markSent || 0)) return;
    const wait = (buf.markSentAt || 0) + MARK_EVERY - Date.now();
    if (wait > 0) {
      if (!this.markTimer) {
        this.markTimer = setTimeout(() => {
          this.markTimer = null;
          this.render();
        }, wait);
      }
      return;
    }
    buf.markSent = upTo;
    buf.markSentAt = Date.now();
    conn.send("MARKREAD", buf.name, "timestamp=" + new Date(upTo).toISOString());
  }

  render() {
    if (this.renderQueued) return;
    this.renderQueued = true;
    requestAnimationFrame(() => {
      this.renderQueued = false;
      this.draw();
    });
  }

  draw() {
    const state = this.state;
    const buf = state.activeBuffer();
    renderBufferList($("buffer-list"), state, (key) => this.selectBuffer(key));
    const title = buf.kind === "server" ? this.serverTitle() : buf.name;
    if ($("buffer-title").textContent !== title) replaceChildren($("buffer-title"), title);
    const topic = buf.kind === "channel" ? buf.topic : buf.kind === "query" ? "Private conversation" : "";
    if ($("topic").textContent !== topic) {
      replaceChildren($("topic"), ...linkify(topic));
      $("topic").title = topic;
    }
    const isChannel = buf.kind === "channel";
    $("app").classList.toggle("no-members", !isChannel || this.hideMembers);
    $("toggle-members").hidden = !isChannel;
    if (isChannel) renderMembers($("members-title"), $("member-list"), state, buf, (nick) => this.commandContext().open(nick));
    this.messages.render(buf);
    this.markRead(buf);
    const elsewhere = state.totalUnread() - buf.unread;
    $("menu-unread").hidden = !elsewhere;
    $("menu-unread").textContent = String(elsewhere);
    const total = state.totalUnread();
    document.title = `${total ? `(${total}) ` : ""}${buf.kind === "server" ? "fastchat" : buf.name + " · fastchat"}`;
  }

  serverTitle() {
    const network = this.conn?.isupport.NETWORK;
    return network || (this.conn ? new URL(this.conn.options.url).host : "Server");
  }
}

const app = new App();
window.fastchat = app; // for the console, and for the browser tests
app.boot();
