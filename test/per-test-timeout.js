'use strict';
// Preloaded by test/run.js (--require) into every test file's process: a test or hook that sets
// no timeout of its own gets TRIBUTARY_TEST_TIMEOUT_MS (default 60 s), so a hang fails that test
// with "test timed out after ..." instead of stalling the run. (Node 20's --test-timeout, which
// run.js also sets, only bounds each file as a whole.) Test files call node:test's exports
// through the module object (`(0, node_test_1.test)(...)`), so replacing them here takes effect.
const nodeTest = require('node:test');

const DEFAULT_MS = Number(process.env.TRIBUTARY_TEST_TIMEOUT_MS) || 60_000;
const isOptions = (x) => x !== null && typeof x === 'object';

/** test(name?, options?, fn?): options gain a timeout unless they have one. */
function testArgs(args) {
  const a = [...args];
  const at = a.findIndex(isOptions);
  if (at >= 0) {
    if (a[at].timeout === undefined) a[at] = { ...a[at], timeout: DEFAULT_MS };
  } else {
    const fn = a.findIndex((x) => typeof x === 'function');
    if (fn >= 0) a.splice(fn, 0, { timeout: DEFAULT_MS });
  }
  return a;
}

/** before(fn, options?) and the other hooks. */
function hookArgs([fn, options, ...rest]) {
  return [fn, isOptions(options) && options.timeout !== undefined ? options : { ...options, timeout: DEFAULT_MS }, ...rest];
}

function wrap(name, adjust) {
  const original = nodeTest[name];
  // Keep .skip, .todo and .only (they bypass the default, which is fine: they do not run or are for local use).
  nodeTest[name] = Object.assign(function withDefaultTimeout(...args) {
    return original.apply(this, adjust(args));
  }, original);
}

for (const name of ['test', 'it']) wrap(name, testArgs);
for (const name of ['before', 'after', 'beforeEach', 'afterEach']) wrap(name, hookArgs);
