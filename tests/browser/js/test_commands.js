// What the user types (fastchat/webclient/commands.js), against a recording context.
import { eq, ok, test, throws } from "./harness.js";
import { parseMessage } from "../../../fastchat/webclient/irc/parser.js";
import { ChatState } from "../../../fastchat/webclient/state.js";
import { CommandError, messageLines, runInput, splitText } from "../../../fastchat/webclient/commands.js";

function context(activeName = null) {
  const state = new ChatState();
  state.apply(parseMessage(":srv 001 me :Welcome"), 0);
  state.apply(parseMessage(":me!u@h JOIN #a"), 1);
  state.apply(parseMessage(":bob!b@h PRIVMSG me :hi"), 2);
  if (activeName) state.setActive(activeName);
  const sent = [];
  const ctx = {
    state,
    sent,
    opened: [],
    closed: [],
    shown: [],
    send: (command, ...params) => sent.push([command, ...params].join(" | ")),
    sendRaw: (line) => sent.push("RAW " + line),
    say: (target, text, opts = {}) => {
      for (const m of messageLines(target, text, opts)) sent.push([m.command, ...m.params].join(" | "));
    },
    open: (name) => ctx.opened.push(name),
    close: (name) => ctx.closed.push(name),
    show: (text) => ctx.shown.push(text),
    quit: (reason) => sent.push("QUIT " + reason),
    clear: () => sent.push("CLEAR"),
    caps: new Set(["draft/message-redaction"]),
    has: (cap) => ctx.caps.has(cap),
  };
  return ctx;
}

test("plain text goes to the active channel; // sends a literal slash", () => {
  const ctx = context("#a");
  runInput(ctx, "hello there");
  runInput(ctx, "//not a command");
  eq(ctx.sent, ["PRIVMSG | #a | hello there", "PRIVMSG | #a | /not a command"]);
});

test("plain text in the server tab is refused", () => {
  throws(() => runInput(context(), "hello"), CommandError);
});

test("/join adds # when missing, passes a key, opens the tab", () => {
  const ctx = context();
  runInput(ctx, "/join dev");
  runInput(ctx, "/JOIN #ops sesame");
  eq(ctx.sent, ["JOIN | #dev", "JOIN | #ops | sesame"]);
  eq(ctx.opened, ["#dev", "#ops"]);
});

test("/part here or there, with a reason", () => {
  const ctx = context("#a");
  runInput(ctx, "/part");
  runInput(ctx, "/part see you");
  runInput(ctx, "/part #b bye now");
  eq(ctx.sent, ["PART | #a", "PART | #a | see you", "PART | #b | bye now"]);
});

test("/msg, /query, /notice", () => {
  const ctx = context();
  runInput(ctx, "/msg bob how are you");
  runInput(ctx, "/query carol hi");
  runInput(ctx, "/notice #a heads up");
  eq(ctx.sent, ["PRIVMSG | bob | how are you", "PRIVMSG | carol | hi", "NOTICE | #a | heads up"]);
  eq(ctx.opened, ["carol"]);
});

test("/me is a CTCP ACTION to the active tab", () => {
  const ctx = context("bob");
  runInput(ctx, "/me waves");
  eq(ctx.sent, ["PRIVMSG | bob | \x01ACTION waves\x01"]);
  throws(() => runInput(context(), "/me waves"), CommandError, "not in the server tab");
});

test("/nick, /topic, /whois, /away, /quit", () => {
  const ctx = context("#a");
  runInput(ctx, "/nick newme");
  runInput(ctx, "/topic");
  runInput(ctx, "/topic a new topic");
  runInput(ctx, "/whois bob");
  runInput(ctx, "/away lunch");
  runInput(ctx, "/away");
  runInput(ctx, "/quit bye all");
  eq(ctx.sent, [
    "NICK | newme",
    "TOPIC | #a",
    "TOPIC | #a | a new topic",
    "WHOIS | bob",
    "AWAY | lunch",
    "AWAY",
    "QUIT bye all",
  ]);
});

test("/list", () => {
  const ctx = context("#a");
  runInput(ctx, "/list");
  runInput(ctx, "/list #a,#b");
  eq(ctx.sent, ["LIST", "LIST | #a,#b"]);
});

test("/close parts a joined channel and closes its tab", () => {
  const ctx = context("#a");
  runInput(ctx, "/close");
  eq(ctx.sent, ["PART | #a"]);
  eq(ctx.closed, ["#a"]);
  throws(() => runInput(context(), "/close"), CommandError, "the server tab stays");
});

test("unknown commands and missing arguments say so", () => {
  const ctx = context("#a");
  const unknown = throws(() => runInput(ctx, "/frobnicate"), CommandError);
  ok(unknown.message.includes("/help"));
  const usage = throws(() => runInput(ctx, "/join"), CommandError);
  ok(usage.message.startsWith("Usage: /join"));
  eq(ctx.sent, []);
});

test("/help lists every command once", () => {
  const ctx = context();
  runInput(ctx, "/help");
  ok(ctx.shown.some((t) => t.startsWith("/join")));
  eq(new Set(ctx.shown).size, ctx.shown.length);
});

test("long text is split at spaces within the byte limit; multi-byte characters stay whole", () => {
  const words = Array.from({ length: 200 }, (_, i) => `word${i}`).join(" ");
  const pieces = splitText(words, 100);
  ok(pieces.length > 1);
  for (const p of pieces) ok(new TextEncoder().encode(p).length <= 100, "fits");
  eq(pieces.join(" "), words);
  const emoji = "😀".repeat(60); // 4 bytes each
  const parts = splitText(emoji, 50);
  for (const p of parts) ok(new TextEncoder().encode(p).length <= 50 && !/[\uD800-\uDBFF]$/.test(p), "whole code points");
  eq(parts.join(""), emoji);
  eq(splitText("short"), ["short"]);
});

test("pasted lines are sent one message each", () => {
  const ctx = context("#a");
  runInput(ctx, "one\ntwo\n\nthree");
  eq(ctx.sent, ["PRIVMSG | #a | one", "PRIVMSG | #a | two", "PRIVMSG | #a | three"]);
});

test("/delete withdraws our last message here, if the server can", () => {
  const ctx = context("#a");
  ok(throws(() => runInput(ctx, "/delete"), CommandError).message.includes("No message of yours"));
  ctx.state.apply(parseMessage("@msgid=m1 :me!u@h PRIVMSG #a :first"), 3);
  ctx.state.apply(parseMessage("@msgid=m2 :me!u@h PRIVMSG #a :oops"), 4);
  ctx.state.apply(parseMessage("@msgid=b1 :bob!b@h PRIVMSG #a :not mine"), 5);
  runInput(ctx, "/delete");
  eq(ctx.sent.at(-1), "REDACT | #a | m2");
  ctx.state.apply(parseMessage(":me!u@h REDACT #a m2"), 6);
  runInput(ctx, "/delete"); // the one before, now that m2 is gone
  eq(ctx.sent.at(-1), "REDACT | #a | m1");
  ctx.caps.clear();
  ok(throws(() => runInput(ctx, "/delete"), CommandError).message.includes("cannot delete"));
});
