// Prints "N passed, N failed" from jest's JSON result. A non-zero exit with no failing test (type check, lint or
// a crash before jest wrote its result) counts as one failure so the line never reads green on a red run.
'use strict';
const fs = require('node:fs');

const [file, rcText] = process.argv.slice(2);
const rc = Number(rcText || 0);
let passed = 0;
let failed = 0;
let skipped = 0;
try {
  const result = JSON.parse(fs.readFileSync(file, 'utf8'));
  passed = result.numPassedTests;
  failed = result.numFailedTests + (result.numRuntimeErrorTestSuites || 0);
  skipped = result.numPendingTests + (result.numTodoTests || 0);
} catch (err) {
  console.log(`ci: no jest result in ${file} (${err.message})`);
}
if (rc !== 0 && failed === 0) {
  console.log('ci: the test command failed outside jest\'s test cases (install, type check, lint or a crashed suite)');
  failed = 1;
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
