/**
 * IRC lines as data: parse and serialize (RFC 1459/2812 as Modern IRC describes them, with
 * IRCv3 message tags), plus the small pure helpers every other module needs (case mapping,
 * ISUPPORT, NAMES prefixes, CTCP, channel modes).
 *
 * Owns: the wire format of one line. Must never: touch the DOM, the network or the clock.
 * A line here has no CRLF (the IRCv3 WebSocket transport carries one line per message).
 */

/** Tag values are escaped on the wire (IRCv3 message-tags, "Escaping values"). */
const TAG_UNESCAPES = { ":": ";", s: " ", "\\": "\\", r: "\r", n: "\n" };
const TAG_ESCAPES = { ";": "\\:", " ": "\\s", "\\": "\\\\", "\r": "\\r", "\n": "\\n" };

export function unescapeTagValue(value) {
  let out = "";
  for (let i = 0; i < value.length; i++) {
    const ch = value[i];
    if (ch !== "\\") {
      out += ch;
      continue;
    }
    i++;
    if (i >= value.length) break; // a trailing lone backslash is dropped
    const next = value[i];
    out += TAG_UNESCAPES[next] ?? next; // an unknown escape is the character itself
  }
  return out;
}

export function escapeTagValue(value) {
  return String(value).replace(/[; \\\r\n]/g, (ch) => TAG_ESCAPES[ch]);
}

/** "nick!user@host" or "server.name" -> {name, user, host} (user/host null when absent). */
export function parseSource(text) {
  const bang = text.indexOf("!");
  const at = text.indexOf("@", bang < 0 ? 0 : bang);
  if (bang < 0 && at < 0) return { name: text, user: null, host: null };
  if (bang < 0) return { name: text.slice(0, at), user: null, host: text.slice(at + 1) };
  if (at < 0) return { name: text.slice(0, bang), user: text.slice(bang + 1), host: null };
  return { name: text.slice(0, bang), user: text.slice(bang + 1, at), host: text.slice(at + 1) };
}

export function formatSource(source) {
  let out = source.name;
  if (source.user) out += "!" + source.user;
  if (source.host) out += "@" + source.host;
  return out;
}

export class ParseError extends Error {}

/**
 * One line -> {tags, source, command, params}. `tags` maps names to unescaped values ("" for a
 * tag without a value); `source` is null when the line has none; `command` is upper-cased.
 * Throws ParseError for a line with no command.
 */
export function parseMessage(line) {
  line = line.replace(/[\r\n]+$/, "");
  let pos = 0;
  const tags = {};
  const skipSpaces = () => {
    while (line[pos] === " ") pos++;
  };
  const word = () => {
    const end = line.indexOf(" ", pos);
    const w = end < 0 ? line.slice(pos) : line.slice(pos, end);
    pos = end < 0 ? line.length : end;
    return w;
  };
  if (line[pos] === "@") {
    pos++;
    for (const item of word().split(";")) {
      if (!item) continue;
      const eq = item.indexOf("=");
      if (eq < 0) tags[item] = "";
      else tags[item.slice(0, eq)] = unescapeTagValue(item.slice(eq + 1));
    }
    skipSpaces();
  }
  let source = null;
  if (line[pos] === ":") {
    pos++;
    source = parseSource(word());
    skipSpaces();
  }
  const command = word().toUpperCase();
  if (!command) throw new ParseError("no command in line: " + JSON.stringify(line));
  const params = [];
  for (;;) {
    skipSpaces();
    if (pos >= line.length) break;
    if (line[pos] === ":") {
      params.push(line.slice(pos + 1));
      break;
    }
    params.push(word());
  }
  return { tags, source, command, params };
}

/**
 * {tags?, source?, command, params?} -> one line (no CRLF). The last parameter is written as
 * a trailing one (":...") when it must be: empty, starting with ":" or holding a space.
 * Throws ParseError for a parameter that cannot be sent (CR, LF or NUL, or a space or
 * leading ":" in a middle parameter).
 */
export function formatMessage(msg) {
  let out = "";
  const tags = msg.tags ? Object.entries(msg.tags) : [];
  if (tags.length) {
    out +=
      "@" +
      tags
        .map(([k, v]) => (v === undefined || v === null || v === "" ? k : k + "=" + escapeTagValue(v)))
        .join(";") +
      " ";
  }
  if (msg.source) out += ":" + formatSource(msg.source) + " ";
  out += msg.command;
  const params = msg.params || [];
  params.forEach((param, i) => {
    param = String(param);
    if (/[\r\n\0]/.test(param)) throw new ParseError("a parameter cannot hold CR, LF or NUL");
    const last = i === params.length - 1;
    if (last && (param === "" || param.startsWith(":") || param.includes(" "))) {
      out += " :" + param;
    } else if (param === "" || param.startsWith(":") || param.includes(" ")) {
      throw new ParseError("only the last parameter may be empty, start with ':' or hold a space");
    } else {
      out += " " + param;
    }
  });
  return out;
}

/** Shorthand: msg("PRIVMSG", "#chan", "hello") -> a message object. */
export function message(command, ...params) {
  return { tags: {}, source: null, command, params };
}

/** Case mapping (ISUPPORT CASEMAPPING): ASCII letters always; rfc1459 also folds []\~ to
 * {}|^ and strict-rfc1459 []\ to {}|. Non-ASCII letters are left alone, as servers do. */
export function caseFold(text, casemapping = "rfc1459") {
  let out = text.replace(/[A-Z]/g, (c) => c.toLowerCase());
  if (casemapping === "rfc1459" || casemapping === "strict-rfc1459") {
    out = out.replace(/[[\]\\]/g, (c) => ({ "[": "{", "]": "}", "\\": "|" })[c]);
    if (casemapping === "rfc1459") out = out.replace(/~/g, "^");
  }
  return out;
}

/** The ISUPPORT tokens of a 005 line's parameters (the nick first, the text last). */
export function parseISupport(params) {
  const tokens = {};
  for (const token of params.slice(1, -1)) {
    if (token.startsWith("-")) {
      tokens[token.slice(1).toUpperCase()] = null;
      continue;
    }
    const eq = token.indexOf("=");
    const key = (eq < 0 ? token : token.slice(0, eq)).toUpperCase();
    const raw = eq < 0 ? "" : token.slice(eq + 1);
    tokens[key] = raw.replace(/\\x([0-9A-Fa-f]{2})/g, (_, hex) => String.fromCharCode(parseInt(hex, 16)));
  }
  return tokens;
}

/** "(ov)@+" -> [{mode: "o", prefix: "@"}, {mode: "v", prefix: "+"}], highest first. */
export function parsePrefixToken(value) {
  const m = /^\(([^)]*)\)(.*)$/.exec(value || "");
  if (!m || m[1].length !== m[2].length) return [];
  return [...m[1]].map((mode, i) => ({ mode, prefix: m[2][i] }));
}

/**
 * A NAMES (353) entry: "@+nick" or, with userhost-in-names, "@nick!user@host" ->
 * {prefixes: "@+", nick}. `prefixChars` is the PREFIX token's symbols ("@+").
 */
export function parseNamesEntry(entry, prefixChars = "@+") {
  let i = 0;
  while (i < entry.length && prefixChars.includes(entry[i])) i++;
  return { prefixes: entry.slice(0, i), nick: parseSource(entry.slice(i)).name };
}

export function isChannel(name, chantypes = "#&") {
  return name.length > 0 && chantypes.includes(name[0]);
}

/** CTCP (\x01VERB text\x01) inside a PRIVMSG/NOTICE text, or null. */
export function parseCTCP(text) {
  if (!text.startsWith("\x01")) return null;
  const body = text.slice(1).replace(/\x01$/, "");
  const space = body.indexOf(" ");
  return space < 0
    ? { verb: body.toUpperCase(), text: "" }
    : { verb: body.slice(0, space).toUpperCase(), text: body.slice(space + 1) };
}

export function formatCTCP(verb, text = "") {
  return "\x01" + verb + (text ? " " + text : "") + "\x01";
}

/**
 * The changes a channel MODE line makes: params ["+ov-k", "a", "b", "key"] ->
 * [{add: true, mode: "o", arg: "a"}, ...]. `chanmodes` is the CHANMODES token split on ","
 * (A: list, B: always an argument, C: an argument when set, D: none); prefix modes always
 * take one.
 */
export function parseModeChanges(params, prefixModes = "ov", chanmodes = ["b", "k", "l", "imnst"]) {
  const [a = "", b = "", c = ""] = chanmodes;
  const changes = [];
  let add = true;
  let argIndex = 1;
  for (const mode of params[0] || "") {
    if (mode === "+" || mode === "-") {
      add = mode === "+";
      continue;
    }
    const takesArg =
      prefixModes.includes(mode) || a.includes(mode) || b.includes(mode) || (add && c.includes(mode));
    const arg = takesArg ? (params[argIndex++] ?? null) : null;
    changes.push({ add, mode, arg });
  }
  return changes;
}

/** Strip mIRC formatting codes (bold, colours, italics, ...) for display as plain text. */
export function stripFormatting(text) {
  return text.replace(/\x03(\d{1,2}(,\d{1,2})?)?|\x04([0-9A-Fa-f]{6}(,[0-9A-Fa-f]{6})?)?|[\x02\x0F\x11\x16\x1D\x1E\x1F]/g, "");
}
