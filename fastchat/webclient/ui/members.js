/**
 * The member list of the active channel: prefixes (@ op, + voice, all of them with
 * multi-prefix), away members dimmed; a click opens a conversation.
 *
 * Owns: the <aside> list. Must never: change state itself; a click calls `onOpenQuery(nick)`.
 */

import { nickSpan } from "./format.js";
import { h, replaceChildren } from "./dom.js";

const shown = new WeakMap(); // list element -> what it shows, as one string

export function renderMembers(title, list, state, buf, onOpenQuery) {
  const members = state.sortedMembers(buf);
  // rebuilt only when it changes: lines arriving leave a focused nick focused
  const signature = buf.key + "\n" + members.map((m) => `${m.prefixes}${m.nick}${m.away ? " away" : ""}`).join("\n");
  if (shown.get(list) === signature) return;
  shown.set(list, signature);
  replaceChildren(title, `${members.length} ${members.length === 1 ? "member" : "members"}`);
  replaceChildren(
    list,
    members.map((m) =>
      h(
        "li",
        { class: "member" + (m.away ? " away" : ""), dataset: { nick: m.nick } },
        h(
          "button",
          { type: "button", title: `Talk to ${m.nick}${m.away ? " (away)" : ""}`, onclick: () => onOpenQuery(m.nick) },
          h("span", { class: "prefix", "aria-label": prefixLabel(m.prefixes) }, m.prefixes),
          nickSpan(m.nick),
        ),
      ),
    ),
  );
}

function prefixLabel(prefixes) {
  const names = { "~": "founder", "&": "admin", "@": "operator", "%": "half-operator", "+": "voiced" };
  return prefixes ? [...prefixes].map((p) => names[p] || p).join(", ") : null;
}
