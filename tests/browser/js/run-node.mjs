// Run the web client's unit tests in Node, when it is installed (a quick loop while editing;
// `make test` runs the same modules in Chromium): node tests/browser/js/run-node.mjs
import { run } from "./harness.js";
import "./test_parser.js";
import "./test_state.js";
import "./test_commands.js";
import "./test_connection.js";
import "./test_composer.js";

const results = await run();
for (const f of results.failed) console.log(`FAIL ${f.name}\n${f.error}\n`);
console.log(`${results.passed}/${results.total} passed`);
process.exit(results.failed.length ? 1 : 0);
