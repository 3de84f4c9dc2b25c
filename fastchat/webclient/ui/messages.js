/**
 * The lines of the active buffer: rendered once each, appended as they come, rebuilt (keeping
 * the reader's place) when history arrives above them; asks for older history when the
 * reader scrolls to the top.
 *
 * Owns: the message list and its scrolling. Must never: change state or send anything; it
 * calls `onNeedHistory(bufferKey)`, and `onChannel(name)` for a click on a #channel.
 */

import { clockTime, dayKey, dayLabel, linkify, nickSpan } from "./format.js";
import { h, replaceChildren } from "./dom.js";

/** Close enough to the bottom to keep following new lines. */
const STICKY_PX = 40;
/** Close enough to the top to ask for older lines. */
const TOP_PX = 60;

export function renderLine(line) {
  const classes = ["line", line.type];
  if (line.self && ["message", "notice", "action"].includes(line.type)) classes.push("self");
  if (line.highlight) classes.push("highlight");
  if (line.history) classes.push("history");
  if (["join", "part", "quit", "nick", "topic", "mode", "kick"].includes(line.type)) classes.push("event");
  const iso = new Date(line.time).toISOString();
  return h(
    "li",
    { class: classes.join(" "), dataset: { id: String(line.id), ...(line.msgid ? { msgid: line.msgid } : {}) } },
    h("time", { datetime: iso, title: new Date(line.time).toLocaleString() }, clockTime(line.time)),
    h("span", { class: "body" }, ...lineBody(line)),
  );
}

function lineBody(line) {
  const text = (t) => h("span", { class: "text" }, ...linkify(t, { channels: true }));
  const reason = line.text ? ` (${line.text})` : "";
  if (line.redacted) {
    // IRCv3 message-redaction: withdrawn; by whom (when not its sender) and why
    const { by, reason: why } = line.redacted;
    const who = by && by !== line.nick ? ` by ${by}` : "";
    const said = h("span", { class: "redacted" }, `message deleted${who}${why ? `: ${why}` : ""}`);
    return [nickSpan(line.nick), h("span", { class: "sep", "aria-hidden": "true" }, ": "), said];
  }
  switch (line.type) {
    case "message":
      return [nickSpan(line.nick), h("span", { class: "sep", "aria-hidden": "true" }, ": "), text(line.text)];
    case "notice":
      return line.nick
        ? ["-", nickSpan(line.nick), "- ", text(line.text)]
        : [text(line.text)];
    case "action":
      return ["* ", nickSpan(line.nick), " ", text(line.text)];
    case "join":
      return ["→ ", nickSpan(line.nick), " joined"];
    case "part":
      return ["← ", nickSpan(line.nick), " left" + reason];
    case "quit":
      return ["← ", nickSpan(line.nick), " quit" + reason];
    case "nick":
      return [nickSpan(line.nick), " is now known as ", nickSpan(line.text)];
    case "topic":
      return line.text
        ? [nickSpan(line.nick), " set the topic: ", text(line.text)]
        : [nickSpan(line.nick), " cleared the topic"];
    case "mode":
      return [line.nick ? nickSpan(line.nick) : "", ` sets mode ${line.text}`];
    case "kick":
      return [nickSpan(line.nick), " kicked ", nickSpan(line.target || ""), reason];
    default:
      return [text(line.text)];
  }
}

export class MessageView {
  constructor(scroller, list, marker, jump, { onNeedHistory, onChannel }) {
    this.scroller = scroller;
    list.addEventListener("click", (e) => {
      const link = e.target.closest("a[data-channel]");
      if (!link) return;
      e.preventDefault();
      onChannel(link.dataset.channel);
    });
    this.jump = jump; // "New lines below": shown when lines arrive while the reader is up
    jump.addEventListener("click", () => this.scrollToBottom());
    this.list = list;
    this.marker = marker;
    this.onNeedHistory = onNeedHistory;
    this.bufKey = null;
    this.version = -1;
    this.firstId = null;
    this.lastId = null;
    this.count = 0;
    this.markerBefore = null; // the unread marker's place when last drawn
    this.lastDay = null;
    this.scrollPositions = new Map(); // buffer key -> distance from the bottom, when left
    scroller.addEventListener("scroll", () => this._onScroll(), { passive: true });
  }

  atBottom() {
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < STICKY_PX;
  }

  scrollToBottom() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
    this.jump.hidden = true;
  }

  /** Scroll by a page (PageUp/PageDown from the input). */
  page(direction) {
    this.scroller.scrollBy({ top: direction * this.scroller.clientHeight * 0.85 });
  }

  render(buf) {
    this.buf = buf;
    if (buf.key !== this.bufKey) {
      if (this.bufKey !== null) {
        const s = this.scroller;
        this.scrollPositions.set(this.bufKey, this.atBottom() ? 0 : s.scrollHeight - s.scrollTop);
      }
      this.bufKey = buf.key;
      this.jump.hidden = true;
      this._rebuild(buf);
      const fromBottom = this.scrollPositions.get(buf.key) || 0;
      if (fromBottom) this.scroller.scrollTop = this.scroller.scrollHeight - fromBottom;
      else this.scrollToBottom();
    } else if (buf.version !== this.version) {
      const stick = this.atBottom();
      const lines = buf.lines;
      const sameStart =
        buf.markerBefore === this.markerBefore &&
        lines.length >= this.count &&
        (this.count === 0 || (lines[0].id === this.firstId && lines[this.count - 1].id === this.lastId));
      const unchanged = sameStart && lines.length === this.count;
      const appendOnly = sameStart && this.count > 0 && lines.length > this.count;
      if (unchanged) {
        // only members, the topic or the history marker changed: no line to draw
      } else if (appendOnly) {
        for (const line of lines.slice(this.count)) this._append(line);
        this._remember(lines);
        if (!stick) this.jump.hidden = false;
      } else {
        // history above (or a /clear): rebuild, keeping the first visible line in place
        const anchor = this._firstVisible();
        const anchorTop = anchor ? anchor.getBoundingClientRect().top : 0;
        this._rebuild(buf);
        if (!stick && anchor) {
          const again = this.list.querySelector(`[data-id="${anchor.dataset.id}"]`);
          if (again) this.scroller.scrollTop += again.getBoundingClientRect().top - anchorTop;
        }
      }
      if (stick) this.scrollToBottom();
    }
    if (buf.redrawn.size) {
      for (const id of buf.redrawn) {
        const li = this.list.querySelector(`[data-id="${id}"]`);
        const line = li && buf.lines.find((l) => l.id === id);
        if (line) li.replaceWith(renderLine(line));
      }
      buf.redrawn.clear();
    }
    this.version = buf.version;
    this._renderMarker(buf);
    // a short buffer cannot be scrolled to its top: ask for more at once
    if (this.scroller.scrollHeight <= this.scroller.clientHeight + TOP_PX) this._maybeNeedHistory();
  }

  _rebuild(buf) {
    this.lastDay = null;
    replaceChildren(this.list);
    const frag = document.createDocumentFragment();
    for (const line of buf.lines) this._append(line, frag);
    this.list.append(frag);
    this._remember(buf.lines);
  }

  _remember(lines) {
    this.markerBefore = this.buf ? this.buf.markerBefore : null;
    this.count = lines.length;
    this.firstId = lines.length ? lines[0].id : null;
    this.lastId = lines.length ? lines[lines.length - 1].id : null;
  }

  _append(line, parent = this.list) {
    if (this.buf && line.id === this.buf.markerBefore) {
      parent.append(h("li", { class: "unread-marker", role: "separator" }, "New messages"));
    }
    const day = dayKey(line.time);
    if (day !== this.lastDay) {
      if (this.lastDay !== null || line.history) {
        parent.append(h("li", { class: "day", role: "separator" }, dayLabel(line.time)));
      }
      this.lastDay = day;
    }
    parent.append(renderLine(line));
  }

  _firstVisible() {
    const top = this.scroller.getBoundingClientRect().top;
    for (const li of this.list.children) {
      if (li.dataset.id && li.getBoundingClientRect().bottom > top) return li;
    }
    return null;
  }

  _renderMarker(buf) {
    if (buf.kind === "server") {
      this.marker.hidden = true;
    } else if (buf.historyLoading) {
      this.marker.hidden = false;
      this.marker.textContent = "Loading earlier messages…";
    } else if (buf.historyExhausted) {
      this.marker.hidden = false;
      this.marker.textContent = "This is the beginning of the history.";
    } else {
      this.marker.hidden = true;
    }
  }

  _onScroll() {
    if (this.scroller.scrollTop < TOP_PX) this._maybeNeedHistory();
    if (!this.jump.hidden && this.atBottom()) this.jump.hidden = true;
  }

  _maybeNeedHistory() {
    const buf = this.buf;
    if (buf && buf.kind !== "server" && !buf.historyLoading && !buf.historyExhausted) {
      this.onNeedHistory(buf.key);
    }
  }
}
