/**
 * The list of tabs: the server, each channel, each conversation, with unread counts.
 *
 * Owns: the <nav> list. Must never: change state itself; a click calls `onSelect(name)`.
 */

import { h, replaceChildren } from "./dom.js";

export function renderBufferList(list, state, onSelect) {
  const items = state.orderedBuffers().map((buf, index) => {
    const active = buf.key === state.active;
    const classes = ["buffer-button", buf.kind];
    if (buf.unread) classes.push("unread");
    if (buf.kind === "channel" && !buf.joined) classes.push("parted");
    const label = buf.kind === "server" ? "Server" : buf.name;
    const shortcut = index < 9 ? `Alt+${index + 1}` : null;
    const unreadText = buf.unread ? `, ${buf.unread} unread` : "";
    return h(
      "li",
      {},
      h(
        "button",
        {
          type: "button",
          class: classes.join(" "),
          "aria-current": active ? "page" : null,
          "aria-label": `${label}${unreadText}`,
          "aria-keyshortcuts": shortcut,
          title: shortcut ? `${label} (${shortcut})` : label,
          dataset: { buffer: buf.key },
          onclick: () => onSelect(buf.key),
        },
        h("span", { class: "name" }, label),
        buf.unread
          ? h("span", { class: "badge" + (buf.highlight ? " highlight" : ""), "aria-hidden": "true" }, String(buf.unread))
          : null,
      ),
    );
  });
  replaceChildren(list, items);
}
