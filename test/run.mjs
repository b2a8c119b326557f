#!/usr/bin/env node
// Runs every test/**/*.test.ts in its own node process (isolation: one leaked handle or crash cannot hide
// another file's result), two at a time, then test/e2e serially. Prints one closing line
// "N passed, N failed, N skipped" counted from uvu's per-file totals.
// Usage: node test/run.mjs [substring...]
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('.', import.meta.url).pathname;
const filters = process.argv.slice(2);
const FILE_TIMEOUT_MS = Number(process.env.SLUICE_TEST_TIMEOUT_MS ?? 180_000);
const E2E_TIMEOUT_MS = Number(process.env.SLUICE_E2E_TIMEOUT_MS ?? 600_000);

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (name === 'fixtures' || name === 'node_modules') continue;
    if (statSync(path).isDirectory()) out.push(...walk(path));
    else if (name.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

const all = walk(root).filter((f) => filters.length === 0 || filters.some((s) => relative(root, f).includes(s)));
const e2e = all.filter((f) => relative(root, f).startsWith('e2e/'));
const unit = all.filter((f) => !e2e.includes(f));

const totals = { passed: 0, failed: 0, skipped: 0 };
const failedFiles = [];
const strip = (s) => s.replace(/\x1b\[[0-9;]*m/g, '');

function runFile(file, timeoutMs) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, ['--import', 'tsx', file], {
      cwd: join(root, '..'),
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => { out += `\n[run] timed out after ${timeoutMs} ms\n`; child.kill('SIGKILL'); }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const text = strip(out);
      const n = (label) => { const m = [...text.matchAll(new RegExp(`${label}:\\s+(\\d+)`, 'g'))]; return m.reduce((a, x) => a + Number(x[1]), 0); };
      const total = n('Total'), passed = n('Passed'), skipped = n('Skipped');
      // uvu exits 0 when a before/after hook throws, reporting the file's tests as neither passed nor skipped.
      const ok = code === 0 && signal === null && total > 0 && passed + skipped === total;
      const failed = ok ? 0 : Math.max(1, total - passed - skipped);
      totals.passed += passed; totals.skipped += skipped; totals.failed += failed;
      const name = relative(root, file);
      const ms = Date.now() - started;
      console.log(`${ok ? 'ok  ' : 'FAIL'} ${name} (${passed}/${total} passed${skipped ? `, ${skipped} skipped` : ''}, ${ms} ms)`);
      if (!ok || process.env.SLUICE_TEST_VERBOSE) { failedFiles.push(name); console.log(text.replace(/^/gm, '     | ')); }
      else {
        // Figures and skip reasons are worth seeing even when green.
        for (const line of text.split('\n')) if (/^\s*(# |SKIP |\[e2e\]|\[bench\])/.test(line)) console.log(`     ${line.trim()}`);
      }
      resolve();
    });
  });
}

async function pool(files, concurrency, timeoutMs) {
  const queue = [...files];
  await Promise.all(Array.from({ length: concurrency }, async () => {
    for (let f = queue.shift(); f; f = queue.shift()) await runFile(f, timeoutMs);
  }));
}

await pool(unit, Number(process.env.SLUICE_TEST_JOBS ?? 2), FILE_TIMEOUT_MS);
await pool(e2e, 1, E2E_TIMEOUT_MS);
if (failedFiles.length) console.log(`\nfailed files: ${failedFiles.join(', ')}`);
console.log(`\n${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exit(totals.failed > 0 || all.length === 0 ? 1 : 0);
