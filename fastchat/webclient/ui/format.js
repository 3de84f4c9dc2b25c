/**
 * How chat text and names look: links made clickable (http and https only), a stable colour
 * per nick, times and days.
 *
 * Owns: turning a line's text into nodes. Must never: produce markup from strings.
 */

import { h } from "./dom.js";

const URL_RE = /\bhttps?:\/\/[^\s<>"]+[^\s<>".,:;!?)\]'}]/gi;

/** Text with its http(s) links as <a> elements (opened in a new tab, no referrer). */
export function linkify(text) {
  const parts = [];
  let last = 0;
  for (const m of text.matchAll(URL_RE)) {
    if (m.index > last) parts.push(text.slice(last, m.index));
    parts.push(h("a", { href: m[0], target: "_blank", rel: "noopener noreferrer" }, m[0]));
    last = m.index + m[0].length;
  }
  if (last < text.length) parts.push(text.slice(last));
  return parts;
}

/** A hue (0-359) from a nick, the same on every page load. */
export function nickHue(nick) {
  let hash = 0;
  for (const ch of nick.toLowerCase()) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return hash % 360;
}

export function nickSpan(nick) {
  return h("span", { class: "nick", style: { "--nick-hue": String(nickHue(nick)) } }, nick);
}

const pad = (n) => String(n).padStart(2, "0");

export function clockTime(ms) {
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function dayKey(ms) {
  const d = new Date(ms);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
}

export function dayLabel(ms) {
  return new Date(ms).toLocaleDateString(undefined, {
    weekday: "long",
    year: "numeric",
    month: "long",
    day: "numeric",
  });
}
