// Reads vitest's JSON report and prints one line "N passed, N failed" (plus skipped if any),
// counting the extra checks (lint, build, typecheck) given on the command line.
import { existsSync, readFileSync } from 'node:fs';

const [file, checksPassed = '0', checksFailed = '0', vitestStatus = '0'] = process.argv.slice(2);
let passed = Number(checksPassed);
let failed = Number(checksFailed);
let skipped = 0;
if (file && existsSync(file)) {
  const report = JSON.parse(readFileSync(file, 'utf8'));
  passed += report.numPassedTests ?? 0;
  failed += report.numFailedTests ?? 0;
  skipped += (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
  // a suite that failed to load has no failed tests but must still count as a failure
  failed += (report.testResults ?? []).filter(
    (r) => r.status === 'failed' && (r.assertionResults ?? []).length === 0,
  ).length;
} else {
  failed += 1; // vitest did not produce a report at all
}
if (Number(vitestStatus) !== 0 && failed === 0) failed = 1;
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
