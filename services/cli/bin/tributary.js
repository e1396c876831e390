#!/usr/bin/env -S node --max-semi-space-size=8
'use strict';
require('../dist/src/cli').main().catch((err) => {
  process.stderr.write(`tributary: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
