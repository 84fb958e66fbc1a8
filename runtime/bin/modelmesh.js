#!/usr/bin/env node
'use strict';
let cli;
try {
  cli = require('../dist/runtime/src/cli.js');
} catch (err) {
  if (err && err.code === 'MODULE_NOT_FOUND' && String(err.message).includes('dist/runtime/src/cli.js')) {
    process.stderr.write('modelmesh: the runtime is not built; run `npm run compile` in the repository root first\n');
    process.exit(1);
  }
  throw err;
}
cli.main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => {
    process.stderr.write(`modelmesh: ${err && err.message ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
