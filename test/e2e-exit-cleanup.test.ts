// tier: fast
/**
 * test/e2e/exit-cleanup.ts: the labs' and daemons' exit cleanups share one 'exit' listener. A process that spawned a
 * daemon per window (bench portal-cpu `--repeat 2`) had one listener per spawn and warned past node's 10.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { bundledModuleUrl } from './helpers/bundled-module.ts';

/** test/e2e/exit-cleanup.ts, bundled for the child (no TypeScript loader in it). */
const HELPER = bundledModuleUrl(fileURLToPath(new URL('./e2e/exit-cleanup.ts', import.meta.url)));

/** A node process that registers `n` cleanups (each prints its number at exit), takes back the first, and exits. */
function run(n: number): { stdout: string; stderr: string } {
  const script = [
    "const before = process.listenerCount('exit');",
    `const { onProcessExit } = await import(${JSON.stringify(HELPER)});`,
    `const forgets = Array.from({ length: ${n} }, (_, i) => onProcessExit(() => console.log('cleanup', i)));`,
    'forgets[0]();',
    "console.log('exit listeners added', process.listenerCount('exit') - before);",
  ].join('\n');
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { stdout: r.stdout, stderr: r.stderr };
}

test('twelve cleanups: one exit listener, no MaxListenersExceededWarning, each run once but the one taken back', () => {
  const { stdout, stderr } = run(12);
  assert.not.match(stderr, /MaxListenersExceeded/);
  assert.match(stdout, /^exit listeners added 1$/m);
  const ran = stdout.split('\n').filter((l) => l.startsWith('cleanup '));
  assert.equal(
    ran,
    Array.from({ length: 11 }, (_, i) => `cleanup ${i + 1}`),
  );
});

test.run();
