// Tab completion (fastchat/webclient/ui/composer.js).
import { eq, test } from "./harness.js";
import { completeWord } from "../../../fastchat/webclient/ui/composer.js";

const nicks = () => ["alice", "Albert", "bob"];

test("a nick first on the line is addressed; later in it, followed by a space", () => {
  eq(completeWord("bo", 2, nicks).text, "bob: ");
  eq(completeWord("hi bo", 5, nicks).text, "hi bob ");
  eq(completeWord("hi bo and", 5, nicks).text, "hi bob  and");
});

test("Tab again cycles through the matches, in order, without regard to case", () => {
  const first = completeWord("al", 2, nicks);
  eq(first.text, "Albert: ");
  const second = completeWord(first.text, first.caret, nicks, first.state);
  eq(second.text, "alice: ");
  const third = completeWord(second.text, second.caret, nicks, second.state);
  eq(third.text, "Albert: ");
});

test("nothing to complete: null (Tab then moves the focus as usual)", () => {
  eq(completeWord("zz", 2, nicks), null);
  eq(completeWord("", 0, nicks), null);
  eq(completeWord("hi ", 3, nicks), null);
});

test("commands and channels are completed with a space", () => {
  const words = (word, atStart) => (word.startsWith("/") && atStart ? ["/join", "/me"] : ["#dev", "#lobby"]);
  eq(completeWord("/jo", 3, words).text, "/join ");
  eq(completeWord("#lo", 3, words).text, "#lobby ");
  eq(completeWord("/join #d", 8, words).text, "/join #dev ");
});
