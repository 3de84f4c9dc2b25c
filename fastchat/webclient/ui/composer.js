/**
 * The input line: Enter sends (Shift+Enter for a new line), Up and Down recall what was sent,
 * Tab completes nicks, /commands and #channels (again to cycle), PageUp/PageDown scroll the
 * messages.
 *
 * Owns: the <textarea> and its keyboard. Must never: interpret what was typed; it hands it to
 * `onSubmit(text)` and asks `candidates(word, atStart)` for words to complete.
 */

const HISTORY_MAX = 100;

/**
 * Complete the word before the caret from `candidates(word, atStart)` (nicks, and /commands
 * or #channels as the word begins). Returns {text, caret, state} or null; `previous` (the
 * last answer's state) cycles to the next match.
 */
export function completeWord(text, caret, candidates, previous = null) {
  let start = caret;
  while (start > 0 && !/\s/.test(text[start - 1])) start--;
  const word = previous ? previous.prefix : text.slice(start, caret);
  if (!word) return null;
  const replaceFrom = previous ? previous.start : start;
  const matches = previous
    ? previous.matches
    : candidates(word, replaceFrom === 0)
        .filter((n) => n.toLowerCase().startsWith(word.toLowerCase()))
        .sort((a, b) => a.localeCompare(b));
  if (!matches.length) return null;
  const index = previous ? (previous.index + 1) % matches.length : 0;
  const replaceTo = previous ? previous.end : caret;
  // a nick first on the line is addressed ("nick: "); anything else is followed by a space
  const suffix = replaceFrom === 0 && !/^[/#&]/.test(matches[index]) ? ": " : " ";
  const completed = matches[index] + suffix;
  const out = text.slice(0, replaceFrom) + completed + text.slice(replaceTo);
  return {
    text: out,
    caret: replaceFrom + completed.length,
    state: { prefix: word, matches, index, start: replaceFrom, end: replaceFrom + completed.length },
  };
}

export class Composer {
  constructor(form, input, { onSubmit, candidates, onPage }) {
    this.form = form;
    this.input = input;
    this.onSubmit = onSubmit;
    this.candidates = candidates;
    this.onPage = onPage;
    this.sent = [];
    this.recall = -1; // index into sent while browsing, -1 when not
    this.draft = "";
    this.completion = null;
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.submit();
    });
    input.addEventListener("keydown", (e) => this._onKey(e));
    input.addEventListener("input", () => {
      this.completion = null;
      this._autosize();
    });
  }

  focus() {
    this.input.focus({ preventScroll: true });
  }

  submit() {
    const text = this.input.value;
    if (!text.trim()) return;
    if (this.sent[this.sent.length - 1] !== text) this.sent.push(text);
    if (this.sent.length > HISTORY_MAX) this.sent.shift();
    this.recall = -1;
    this.draft = "";
    this.input.value = "";
    this._autosize();
    this.onSubmit(text);
  }

  _set(text) {
    this.input.value = text;
    this.input.setSelectionRange(text.length, text.length);
    this._autosize();
  }

  _autosize() {
    this.input.style.height = "auto";
    if (this.input.value.includes("\n")) this.input.style.height = this.input.scrollHeight + 2 + "px";
  }

  _onKey(e) {
    const input = this.input;
    if (e.key !== "Tab") this.completion = null;
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      this.submit();
    } else if (e.key === "ArrowUp" && !e.altKey && !e.ctrlKey && !input.value.slice(0, input.selectionStart).includes("\n")) {
      if (!this.sent.length) return;
      e.preventDefault();
      if (this.recall === -1) {
        this.draft = input.value;
        this.recall = this.sent.length;
      }
      this.recall = Math.max(0, this.recall - 1);
      this._set(this.sent[this.recall]);
    } else if (e.key === "ArrowDown" && !e.altKey && !e.ctrlKey && this.recall !== -1 && !input.value.slice(input.selectionEnd).includes("\n")) {
      e.preventDefault();
      this.recall += 1;
      if (this.recall >= this.sent.length) {
        this.recall = -1;
        this._set(this.draft);
      } else {
        this._set(this.sent[this.recall]);
      }
    } else if (e.key === "Tab" && !e.ctrlKey && !e.altKey && !e.shiftKey) {
      const done = completeWord(input.value, input.selectionStart, this.candidates, this.completion);
      if (!done) return; // let Tab move the focus, as everywhere else
      e.preventDefault();
      this.completion = done.state;
      input.value = done.text;
      input.setSelectionRange(done.caret, done.caret);
    } else if (e.key === "PageUp" || e.key === "PageDown") {
      e.preventDefault();
      this.onPage(e.key === "PageUp" ? -1 : 1);
    }
  }
}
