/**
 * The list of tabs: the server, each channel, each conversation, with unread counts.
 *
 * Owns: the <nav> list. Each tab's button is made once and then updated in place, so a
 * keyboard user's focus stays on it while lines arrive. Must never: change state itself; a
 * click calls `onSelect(key)`.
 */

import { h } from "./dom.js";

const itemsOf = new WeakMap(); // list element -> Map(buffer key -> {li, button, name, badge})

function makeItem(key, onSelect) {
  const name = h("span", { class: "name" });
  const badge = h("span", { class: "badge", "aria-hidden": "true", hidden: true });
  const button = h("button", { type: "button", dataset: { buffer: key }, onclick: () => onSelect(key) }, name, badge);
  return { li: h("li", {}, button), button, name, badge };
}

function setAttr(el, attr, value) {
  if (value === null) {
    if (el.hasAttribute(attr)) el.removeAttribute(attr);
  } else if (el.getAttribute(attr) !== value) {
    el.setAttribute(attr, value);
  }
}

export function renderBufferList(list, state, onSelect) {
  if (!itemsOf.has(list)) itemsOf.set(list, new Map());
  const items = itemsOf.get(list);
  const wanted = state.orderedBuffers();
  const keys = new Set(wanted.map((b) => b.key));
  for (const [key, item] of items) {
    if (!keys.has(key)) {
      item.li.remove();
      items.delete(key);
    }
  }
  wanted.forEach((buf, index) => {
    let item = items.get(buf.key);
    if (!item) {
      item = makeItem(buf.key, onSelect);
      items.set(buf.key, item);
    }
    const classes = ["buffer-button", buf.kind];
    if (buf.unread) classes.push("unread");
    if (buf.kind === "channel" && !buf.joined) classes.push("parted");
    const label = buf.kind === "server" ? "Server" : buf.name;
    const shortcut = index < 10 ? `Alt+${(index + 1) % 10}` : null;
    if (item.button.className !== classes.join(" ")) item.button.className = classes.join(" ");
    setAttr(item.button, "aria-current", buf.key === state.active ? "page" : null);
    setAttr(item.button, "aria-label", `${label}${buf.unread ? `, ${buf.unread} unread` : ""}`);
    setAttr(item.button, "aria-keyshortcuts", shortcut);
    setAttr(item.button, "title", shortcut ? `${label} (${shortcut})` : label);
    if (item.name.textContent !== label) item.name.textContent = label;
    item.badge.hidden = !buf.unread;
    const count = String(buf.unread);
    if (item.badge.textContent !== count) item.badge.textContent = count;
    item.badge.classList.toggle("highlight", buf.highlight);
    // move only what is out of place (moving a node drops its focus)
    if (list.children[index] !== item.li) list.insertBefore(item.li, list.children[index] || null);
  });
}
