/**
 * How chat text and names look: links made clickable (http and https only), a stable colour
 * per nick, times and days.
 *
 * Owns: turning a line's text into nodes. Must never: produce markup from strings.
 */

import { h } from "./dom.js";

const URL_RE = /\bhttps?:\/\/[^\s<>"]+[^\s<>".,:;!?)\]'}]/gi;
/** A channel name standing alone in text (after a space or an opening bracket). */
const CHANNEL_RE = /(?<=^|[\s(])#[^\s,:;!?)\]'"]*[^\s,.:;!?)\]'"]/g;

/**
 * Text with its http(s) links as <a> elements (opened in a new tab, no referrer) and, with
 * `channels`, its #channel names as links the message list turns into a /join (their
 * `data-channel`).
 */
export function linkify(text, { channels = false } = {}) {
  const found = [...text.matchAll(URL_RE)].map((m) => ({ index: m.index, text: m[0], url: true }));
  if (channels) {
    for (const m of text.matchAll(CHANNEL_RE)) {
      if (!found.some((f) => m.index >= f.index && m.index < f.index + f.text.length)) {
        found.push({ index: m.index, text: m[0], url: false });
      }
    }
    found.sort((a, b) => a.index - b.index);
  }
  const parts = [];
  let last = 0;
  for (const f of found) {
    if (f.index > last) parts.push(text.slice(last, f.index));
    parts.push(
      f.url
        ? h("a", { href: f.text, target: "_blank", rel: "noopener noreferrer" }, f.text)
        : h("a", { href: "#", class: "channel-link", dataset: { channel: f.text }, title: `Join ${f.text}` }, f.text),
    );
    last = f.index + f.text.length;
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
