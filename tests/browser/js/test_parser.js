// The IRC line parser and serializer (fastchat/webclient/irc/parser.js). Parse cases follow
// the IRCv3 parser-tests (msg-split, msg-join, userhost-split) where they apply.
import { eq, ok, test, throws } from "./harness.js";
import {
  ParseError,
  caseFold,
  escapeTagValue,
  formatCTCP,
  formatMessage,
  isChannel,
  parseCTCP,
  parseISupport,
  parseMessage,
  parseModeChanges,
  parseNamesEntry,
  parsePrefixToken,
  parseSource,
  stripFormatting,
  unescapeTagValue,
} from "../../../fastchat/webclient/irc/parser.js";

const SPLIT_CASES = [
  ["foo bar baz asdf", { command: "FOO", params: ["bar", "baz", "asdf"] }],
  [":coolguy foo bar baz asdf", { source: "coolguy", command: "FOO", params: ["bar", "baz", "asdf"] }],
  ["foo bar baz :asdf quux", { command: "FOO", params: ["bar", "baz", "asdf quux"] }],
  ["foo bar baz :", { command: "FOO", params: ["bar", "baz", ""] }],
  ["foo bar baz ::asdf", { command: "FOO", params: ["bar", "baz", ":asdf"] }],
  [":coolguy foo bar baz :asdf quux", { source: "coolguy", command: "FOO", params: ["bar", "baz", "asdf quux"] }],
  [":coolguy foo bar baz :  asdf quux ", { source: "coolguy", command: "FOO", params: ["bar", "baz", "  asdf quux "] }],
  [":coolguy PRIVMSG bar :lol :) ", { source: "coolguy", command: "PRIVMSG", params: ["bar", "lol :) "] }],
  [":coolguy foo bar baz :", { source: "coolguy", command: "FOO", params: ["bar", "baz", ""] }],
  [":coolguy foo bar baz :  ", { source: "coolguy", command: "FOO", params: ["bar", "baz", "  "] }],
  ["@a=b;c=32;k;rt=ql7 foo", { tags: { a: "b", c: "32", k: "", rt: "ql7" }, command: "FOO", params: [] }],
  ["@a=b\\\\and\\nk;c=72\\s45;d=gh\\:764 foo", { tags: { a: "b\\and\nk", c: "72 45", d: "gh;764" }, command: "FOO", params: [] }],
  ["@c;h=;a=b :quux ab cd", { tags: { c: "", h: "", a: "b" }, source: "quux", command: "AB", params: ["cd"] }],
  [":src JOIN #chan", { source: "src", command: "JOIN", params: ["#chan"] }],
  [":src JOIN :#chan", { source: "src", command: "JOIN", params: ["#chan"] }],
  [":src AWAY", { source: "src", command: "AWAY", params: [] }],
  [":src AWAY ", { source: "src", command: "AWAY", params: [] }],
  [":cool\tguy foo bar baz", { source: "cool\tguy", command: "FOO", params: ["bar", "baz"] }],
  ["@tag1=value\\1 COMMAND", { tags: { tag1: "value1" }, command: "COMMAND", params: [] }],
  ["@tag1=value1\\ COMMAND", { tags: { tag1: "value1" }, command: "COMMAND", params: [] }],
  ["@tag1=1;tag2=3;tag3=4;tag1=5 COMMAND", { tags: { tag1: "5", tag2: "3", tag3: "4" }, command: "COMMAND", params: [] }],
  ["@tag1=1;tag2=3;tag3=4;tag1=5;vendor/tag2=8 COMMAND", { tags: { tag1: "5", tag2: "3", tag3: "4", "vendor/tag2": "8" }, command: "COMMAND", params: [] }],
  [":SomeOp MODE #channel :+i", { source: "SomeOp", command: "MODE", params: ["#channel", "+i"] }],
  [":SomeOp MODE #channel +oo SomeUser :AnotherUser", { source: "SomeOp", command: "MODE", params: ["#channel", "+oo", "SomeUser", "AnotherUser"] }],
  ["foo  bar   baz", { command: "FOO", params: ["bar", "baz"] }],
  ["PING :irc.example.com\r\n", { command: "PING", params: ["irc.example.com"] }],
];

for (const [line, want] of SPLIT_CASES) {
  test(`parse ${JSON.stringify(line)}`, () => {
    const msg = parseMessage(line);
    eq(msg.command, want.command, "command");
    eq(msg.params, want.params, "params");
    eq(msg.tags, want.tags || {}, "tags");
    eq(msg.source ? msg.source.name : undefined, want.source, "source");
  });
}

test("a line without a command is a ParseError", () => {
  throws(() => parseMessage(""), ParseError, "empty");
  throws(() => parseMessage("@a=b "), ParseError, "tags only");
  throws(() => parseMessage(":src "), ParseError, "source only");
});

test("sources split into nick, user and host", () => {
  eq(parseSource("coolguy"), { name: "coolguy", user: null, host: null });
  eq(parseSource("coolguy!ag@127.0.0.1"), { name: "coolguy", user: "ag", host: "127.0.0.1" });
  eq(parseSource("coolguy!~ag@localhost"), { name: "coolguy", user: "~ag", host: "localhost" });
  eq(parseSource("coolguy@127.0.0.1"), { name: "coolguy", user: null, host: "127.0.0.1" });
  eq(parseSource("coolguy!ag"), { name: "coolguy", user: "ag", host: null });
  eq(parseSource("irc.example.com"), { name: "irc.example.com", user: null, host: null });
  eq(parseSource("coolguy!ag@net\x035w\x03ork.admin").host, "net\x035w\x03ork.admin");
});

const JOIN_CASES = [
  [{ command: "foo", params: ["bar", "baz", "asdf"] }, "foo bar baz asdf"],
  [{ source: { name: "src" }, command: "AWAY" }, ":src AWAY"],
  [{ command: "foo", params: ["bar", "baz", "asdf quux"] }, "foo bar baz :asdf quux"],
  [{ command: "foo", params: ["bar", "baz", ""] }, "foo bar baz :"],
  [{ command: "foo", params: ["bar", "baz", ":asdf"] }, "foo bar baz ::asdf"],
  [{ tags: { tag: "123" }, command: "foo" }, "@tag=123 foo"],
  [{ tags: { tag: "" }, command: "foo" }, "@tag foo"],
  [{ tags: { tag: "\\" }, command: "foo" }, "@tag=\\\\ foo"],
  [{ tags: { tag: "; \r\n" }, command: "foo" }, "@tag=\\:\\s\\r\\n foo"],
  [{ source: { name: "n", user: "u", host: "h" }, command: "PRIVMSG", params: ["#a", "hi"] }, ":n!u@h PRIVMSG #a hi"],
];

for (const [msg, want] of JOIN_CASES) {
  test(`format ${JSON.stringify(want)}`, () => eq(formatMessage(msg), want));
}

test("format refuses what cannot be sent", () => {
  throws(() => formatMessage({ command: "PRIVMSG", params: ["#a", "two\nlines"] }), ParseError, "LF");
  throws(() => formatMessage({ command: "PRIVMSG", params: ["#a", "x\r"] }), ParseError, "CR");
  throws(() => formatMessage({ command: "PRIVMSG", params: ["#a", "x\0"] }), ParseError, "NUL");
  throws(() => formatMessage({ command: "PRIVMSG", params: ["a b", "x"] }), ParseError, "space in a middle param");
  throws(() => formatMessage({ command: "PRIVMSG", params: [":a", "x"] }), ParseError, "colon first in a middle param");
});

test("tag values survive escaping, whatever they hold", () => {
  const alphabet = ["a", " ", ";", "\\", "\r", "\n", "=", ":", "é", "s", "n", "\\s"];
  let seed = 42;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let i = 0; i < 500; i++) {
    let value = "";
    const n = Math.floor(random() * 12);
    for (let j = 0; j < n; j++) value += alphabet[Math.floor(random() * alphabet.length)];
    eq(unescapeTagValue(escapeTagValue(value)), value, "escape round trip");
    const line = formatMessage({ tags: { "+draft/x": value }, command: "TAGMSG", params: ["#a"] });
    ok(!/[ \r\n;]/.test(line.split(" ")[0].slice(1).replace(/;/, "")), "no raw separators in tags");
    const back = parseMessage(line);
    eq(back.tags["+draft/x"], value, "value through a line");
  }
});

test("messages survive format then parse", () => {
  const texts = ["hello", "", ":)", " leading", "trailing ", "a:b", "ünïcödé 👋", "x  y"];
  for (const text of texts) {
    const msg = { command: "PRIVMSG", params: ["#chan", text] };
    eq(parseMessage(formatMessage(msg)).params, ["#chan", text], JSON.stringify(text));
  }
});

test("case mapping folds as the server does", () => {
  eq(caseFold("Nick[]\\~"), "nick{}|^");
  eq(caseFold("Nick[]\\~", "ascii"), "nick[]\\~");
  eq(caseFold("Nick[]\\~", "strict-rfc1459"), "nick{}|~");
  eq(caseFold("ÉCOLE", "rfc1459"), "École".slice(0, 1) + "cole", "non-ASCII letters stay");
});

test("ISUPPORT tokens, with values, negations and escapes", () => {
  const tokens = parseISupport(["me", "PREFIX=(ov)@+", "CHANTYPES=#&", "SAFELIST", "-KNOCK", "NETWORK=A\\x20B", "are supported by this server"]);
  eq(tokens.PREFIX, "(ov)@+");
  eq(tokens.CHANTYPES, "#&");
  eq(tokens.SAFELIST, "");
  eq(tokens.KNOCK, null);
  eq(tokens.NETWORK, "A B");
});

test("PREFIX and NAMES entries (multi-prefix, userhost-in-names)", () => {
  eq(parsePrefixToken("(qaohv)~&@%+").map((p) => p.prefix).join(""), "~&@%+");
  eq(parsePrefixToken("(ov)@"), [], "mismatched lengths");
  eq(parseNamesEntry("@+alice"), { prefixes: "@+", nick: "alice" });
  eq(parseNamesEntry("bob"), { prefixes: "", nick: "bob" });
  eq(parseNamesEntry("+carol!c@host"), { prefixes: "+", nick: "carol" });
  eq(parseNamesEntry("~dan", "~@+"), { prefixes: "~", nick: "dan" });
});

test("channels by CHANTYPES", () => {
  ok(isChannel("#a"));
  ok(isChannel("&a"));
  ok(!isChannel("alice"));
  ok(!isChannel(""));
  ok(!isChannel("#a", "&"));
});

test("CTCP", () => {
  eq(parseCTCP("\x01ACTION waves\x01"), { verb: "ACTION", text: "waves" });
  eq(parseCTCP("\x01VERSION\x01"), { verb: "VERSION", text: "" });
  eq(parseCTCP("\x01action no end"), { verb: "ACTION", text: "no end" });
  eq(parseCTCP("plain"), null);
  eq(formatCTCP("ACTION", "waves"), "\x01ACTION waves\x01");
});

test("channel MODE changes by CHANMODES and PREFIX", () => {
  eq(parseModeChanges(["+ov-v", "a", "b", "c"]), [
    { add: true, mode: "o", arg: "a" },
    { add: true, mode: "v", arg: "b" },
    { add: false, mode: "v", arg: "c" },
  ]);
  eq(parseModeChanges(["+lk-l", "10", "key"]), [
    { add: true, mode: "l", arg: "10" },
    { add: true, mode: "k", arg: "key" },
    { add: false, mode: "l", arg: null },
  ]);
  eq(parseModeChanges(["+mb", "*!*@x"]), [
    { add: true, mode: "m", arg: null },
    { add: true, mode: "b", arg: "*!*@x" },
  ]);
});

test("formatting codes are stripped", () => {
  eq(stripFormatting("\x02bold\x02 \x0304,12red\x03 \x1Ditalic\x0F"), "bold red italic");
});
