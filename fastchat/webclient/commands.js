/**
 * What the user types: "/join #dev" and friends, and plain text (a message to the active
 * buffer). Each command is a declared row (name, usage, what it does); `runInput` finds the
 * row and runs it against a narrow context.
 *
 * Owns: the command table and splitting long text into IRC-sized messages. Must never: touch
 * the DOM or the socket directly; it calls the context (send, open, close, show, quit).
 *
 * The context: {state, has(capability), send(command, ...params), say(target, text,
 * {action, notice}), open(name), close(name), show(text, type), quit(reason), clear()}.
 */

import { formatCTCP } from "./irc/parser.js";
import { lastOwnMsgid } from "./state.js";

/** Room for the text of one PRIVMSG: 512 bytes minus the command, target and our own
 * "nick!user@host" prefix the server adds when relaying it (kept well clear of the limit). */
export const MAX_TEXT_BYTES = 400;

/** Split text into pieces of at most `maxBytes` UTF-8 bytes, at spaces where possible. */
export function splitText(text, maxBytes = MAX_TEXT_BYTES) {
  const encoder = new TextEncoder();
  const pieces = [];
  let rest = text;
  while (encoder.encode(rest).length > maxBytes) {
    // the longest prefix that fits, in whole code points
    let bytes = 0;
    let cut = 0;
    for (const ch of rest) {
      const n = encoder.encode(ch).length;
      if (bytes + n > maxBytes) break;
      bytes += n;
      cut += ch.length;
    }
    const space = rest.lastIndexOf(" ", cut);
    if (space > cut / 2) cut = space;
    pieces.push(rest.slice(0, cut));
    rest = rest.slice(cut).replace(/^ /, "");
  }
  if (rest || !pieces.length) pieces.push(rest);
  return pieces;
}

function needBuffer(ctx, kinds) {
  const buf = ctx.state.activeBuffer();
  if (!kinds.includes(buf.kind)) {
    throw new CommandError(
      kinds.includes("channel") && kinds.length === 1 ? "Not in a channel tab" : "Not in a channel or conversation tab",
    );
  }
  return buf;
}

export class CommandError extends Error {}

function channelName(ctx, name) {
  return ctx.state.isChannel(name) ? name : "#" + name;
}

/** The command table: name -> {usage, help, min (arguments), run(ctx, args, rest)}. */
export const COMMANDS = {
  join: {
    usage: "/join <#channel> [key]",
    help: "join a channel (and open its tab)",
    min: 1,
    run(ctx, args) {
      const channel = channelName(ctx, args[0]);
      ctx.send("JOIN", channel, ...(args[1] ? [args[1]] : []));
      ctx.open(channel);
    },
  },
  part: {
    usage: "/part [#channel] [reason]",
    help: "leave a channel (this one by default)",
    min: 0,
    run(ctx, args, rest) {
      let channel;
      let reason = rest;
      if (args[0] && ctx.state.isChannel(args[0])) {
        channel = args[0];
        reason = rest.slice(args[0].length).trim();
      } else {
        channel = needBuffer(ctx, ["channel"]).name;
      }
      ctx.send("PART", channel, ...(reason ? [reason] : []));
    },
  },
  msg: {
    usage: "/msg <nick|#channel> <text>",
    help: "send a message without opening a tab",
    min: 2,
    run(ctx, args, rest) {
      ctx.say(args[0], rest.slice(args[0].length).trim());
    },
  },
  query: {
    usage: "/query <nick> [text]",
    help: "open a conversation tab with someone (and say something)",
    min: 1,
    run(ctx, args, rest) {
      const nick = args[0];
      if (ctx.state.isChannel(nick)) throw new CommandError("/query is for nicks; use /join for channels");
      ctx.open(nick);
      const text = rest.slice(nick.length).trim();
      if (text) ctx.say(nick, text);
    },
  },
  me: {
    usage: "/me <action>",
    help: "say what you are doing (CTCP ACTION)",
    min: 1,
    run(ctx, args, rest) {
      const buf = needBuffer(ctx, ["channel", "query"]);
      ctx.say(buf.name, rest, { action: true });
    },
  },
  notice: {
    usage: "/notice <nick|#channel> <text>",
    help: "send a notice",
    min: 2,
    run(ctx, args, rest) {
      ctx.say(args[0], rest.slice(args[0].length).trim(), { notice: true });
    },
  },
  nick: {
    usage: "/nick <new nick>",
    help: "change your nick",
    min: 1,
    run(ctx, args) {
      ctx.send("NICK", args[0]);
    },
  },
  topic: {
    usage: "/topic [new topic]",
    help: "show or set this channel's topic",
    min: 0,
    run(ctx, args, rest) {
      const buf = needBuffer(ctx, ["channel"]);
      if (rest) ctx.send("TOPIC", buf.name, rest);
      else ctx.send("TOPIC", buf.name);
    },
  },
  whois: {
    usage: "/whois <nick>",
    help: "who is this?",
    min: 1,
    run(ctx, args) {
      ctx.send("WHOIS", args[0]);
    },
  },
  away: {
    usage: "/away [message]",
    help: "mark yourself away (without a message: back)",
    min: 0,
    run(ctx, args, rest) {
      if (rest) ctx.send("AWAY", rest);
      else ctx.send("AWAY");
    },
  },
  invite: {
    usage: "/invite <nick> [#channel]",
    help: "invite someone to this channel",
    min: 1,
    run(ctx, args) {
      ctx.send("INVITE", args[0], args[1] || needBuffer(ctx, ["channel"]).name);
    },
  },
  kick: {
    usage: "/kick <nick> [reason]",
    help: "remove someone from this channel",
    min: 1,
    run(ctx, args, rest) {
      const reason = rest.slice(args[0].length).trim();
      ctx.send("KICK", needBuffer(ctx, ["channel"]).name, args[0], ...(reason ? [reason] : []));
    },
  },
  mode: {
    usage: "/mode [target] <modes> [args]",
    help: "change channel or user modes (+o nick, +v nick, +m, ...)",
    min: 1,
    run(ctx, args) {
      if (/^[+-]/.test(args[0])) ctx.send("MODE", needBuffer(ctx, ["channel"]).name, ...args);
      else ctx.send("MODE", ...args);
    },
  },
  list: {
    usage: "/list [#channel,...]",
    help: "list the channels (in this tab)",
    min: 0,
    run(ctx, args) {
      ctx.send("LIST", ...args.slice(0, 1));
    },
  },
  delete: {
    usage: "/delete",
    help: "delete your last message in this tab (for everyone whose client can hide it)",
    min: 0,
    run(ctx) {
      const buf = needBuffer(ctx, ["channel", "query"]);
      if (!ctx.has("draft/message-redaction")) throw new CommandError("This server cannot delete messages");
      const msgid = lastOwnMsgid(buf);
      if (!msgid) throw new CommandError("No message of yours to delete here");
      ctx.send("REDACT", buf.name, msgid);
    },
  },
  close: {
    usage: "/close",
    help: "close this tab (leaving the channel)",
    min: 0,
    run(ctx) {
      const buf = ctx.state.activeBuffer();
      if (buf.kind === "server") throw new CommandError("The server tab stays open; /quit to disconnect");
      if (buf.kind === "channel" && buf.joined) ctx.send("PART", buf.name);
      ctx.close(buf.name);
    },
  },
  clear: {
    usage: "/clear",
    help: "clear this tab's lines",
    min: 0,
    run(ctx) {
      ctx.clear();
    },
  },
  quote: {
    usage: "/quote <raw IRC line>",
    help: "send a line as it is",
    min: 1,
    run(ctx, args, rest) {
      ctx.sendRaw(rest);
    },
  },
  quit: {
    usage: "/quit [reason]",
    help: "disconnect (and stop reconnecting)",
    min: 0,
    run(ctx, args, rest) {
      ctx.quit(rest);
    },
  },
  help: {
    usage: "/help",
    help: "list the commands",
    min: 0,
    run(ctx) {
      for (const [name, row] of Object.entries(COMMANDS)) {
        if (ALIASES[name]) continue;
        ctx.show(`${row.usage}: ${row.help}`, "info");
      }
    },
  },
};

const ALIASES = { j: "join", leave: "part", q: "query", raw: "quote", w: "whois", exit: "quit" };
for (const [alias, name] of Object.entries(ALIASES)) COMMANDS[alias] = COMMANDS[name];

/**
 * Run what the user typed in the active buffer. Text not starting with "/" (or starting with
 * "//", which sends a literal "/") is said to the active channel or conversation.
 * Throws CommandError with a message to show.
 */
export function runInput(ctx, input) {
  const text = input.replace(/\r?\n$/, "");
  if (!text.trim()) return;
  if (!text.startsWith("/") || text.startsWith("//")) {
    const buf = ctx.state.activeBuffer();
    if (buf.kind === "server") throw new CommandError("This is the server tab: /join a channel, or /msg someone");
    for (const line of (text.startsWith("//") ? text.slice(1) : text).split(/\r?\n/)) {
      if (line) ctx.say(buf.name, line);
    }
    return;
  }
  const space = text.indexOf(" ");
  const name = (space < 0 ? text.slice(1) : text.slice(1, space)).toLowerCase();
  const rest = space < 0 ? "" : text.slice(space + 1).trim();
  const args = rest ? rest.split(/\s+/) : [];
  const row = COMMANDS[name];
  if (!row) throw new CommandError(`Unknown command /${name}; /help lists them`);
  if (args.length < row.min) throw new CommandError(`Usage: ${row.usage}`);
  row.run(ctx, args, rest);
}

/** The PRIVMSG/NOTICE lines for one message (CTCP ACTION for /me), split to fit. */
export function messageLines(target, text, { action = false, notice = false } = {}) {
  const command = notice ? "NOTICE" : "PRIVMSG";
  return splitText(text, action ? MAX_TEXT_BYTES - 10 : MAX_TEXT_BYTES).map((piece) => ({
    command,
    params: [target, action ? formatCTCP("ACTION", piece) : piece],
    text: piece,
  }));
}
