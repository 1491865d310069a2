// The WebDAV door against litmus, the reference WebDAV conformance suite (Debian package
// `litmus`): the basic, copymove and props suites must run with no failure. Litmus speaks HTTP
// Basic; the token goes in as the password.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { startServer, tempDir, type RunningServer } from './support/server.js';

const SUITES_DIR = '/usr/libexec/litmus';
const HTDOCS = '/usr/share/litmus/htdocs';

let server: RunningServer;
before(async () => {
  server = await startServer({ fsync: false });
});
after(async () => server.stop());

interface SuiteResult {
  output: string;
  summary: string;
  run: number;
  passed: number;
  failed: number;
}

/** Runs one litmus suite binary; litmus exits non-zero on failures, so the summary line decides. */
async function runSuite(suite: string): Promise<SuiteResult> {
  const cwd = await tempDir('sluice-litmus-');
  const output = await new Promise<string>((resolve) => {
    execFile(
      `${SUITES_DIR}/${suite}`,
      ['--htdocs', HTDOCS, `${server.url}/`, 'litmus', server.token],
      { cwd, timeout: 60_000 },
      (_err, stdout, stderr) => resolve(stdout + stderr),
    );
  });
  await rm(cwd, { recursive: true, force: true });
  const m = /<- summary for `(\w+)': of (\d+) tests run: (\d+) passed, (\d+) failed\./.exec(output);
  assert.ok(m, `no litmus summary for ${suite}:\n${output}`);
  return { output, summary: m[0], run: Number(m[2]), passed: Number(m[3]), failed: Number(m[4]) };
}

for (const suite of ['basic', 'copymove', 'props']) {
  test(`litmus ${suite}: no failures`, { skip: !existsSync(`${SUITES_DIR}/${suite}`) && 'litmus is not installed' }, async () => {
    const result = await runSuite(suite);
    console.log(result.summary);
    for (const line of result.output.split('\n').filter((l) => /WARNING|FAIL/.test(l))) console.log(`  ${line.trim()}`);
    assert.equal(result.failed, 0, result.output);
    assert.ok(result.run > 0);
  });
}
