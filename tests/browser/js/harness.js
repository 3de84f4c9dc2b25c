/**
 * The smallest test harness that runs the same test modules in Chromium (index.html, driven
 * by tests/browser/test_js_units.py) and in Node (run-node.mjs): `test(name, fn)` records,
 * `run()` runs them all and returns {passed, failed: [{name, error}]}.
 */

const registered = [];

export function test(name, fn) {
  registered.push({ name, fn });
}

export class AssertionError extends Error {}

function show(value) {
  return JSON.stringify(value, (k, v) => (v instanceof Map ? Object.fromEntries(v) : v instanceof Set ? [...v] : v));
}

export function eq(actual, expected, what = "") {
  if (show(actual) !== show(expected)) {
    throw new AssertionError(`${what ? what + ": " : ""}expected ${show(expected)}, got ${show(actual)}`);
  }
}

export function ok(value, what = "expected a true value") {
  if (!value) throw new AssertionError(what);
}

export function throws(fn, ErrorClass, what = "") {
  try {
    fn();
  } catch (err) {
    if (ErrorClass && !(err instanceof ErrorClass)) {
      throw new AssertionError(`${what}: threw ${err}, not a ${ErrorClass.name}`);
    }
    return err;
  }
  throw new AssertionError(`${what || "expected an exception"}: nothing was thrown`);
}

export async function run() {
  const failed = [];
  let passed = 0;
  for (const { name, fn } of registered) {
    try {
      await fn();
      passed++;
    } catch (err) {
      failed.push({ name, error: String(err && err.stack ? err.stack : err) });
    }
  }
  return { passed, failed, total: registered.length };
}
