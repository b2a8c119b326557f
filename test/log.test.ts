// tier: daemon
/**
 * The logger on a log stream whose reader went away: its writes fail with EPIPE. The daemon must go on (it logs
 * uncaught exceptions, to that same stream: unheard, each EPIPE was one more uncaught exception, a loop that held an
 * orphaned daemon at 100% CPU). A child process logs to pipes the parent has closed, counting uncaught exceptions.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';

const LOG = new URL('../src/log.ts', import.meta.url).pathname;

test('a closed stdout/stderr pipe: no uncaught exception, the process goes on and ends by itself', async () => {
  const script = `
    import { createLogger } from ${JSON.stringify(LOG)};
    let uncaught = 0;
    process.on('uncaughtException', (err) => { uncaught++; log.error('uncaught exception', { reason: String(err) }); });
    const log = createLogger({ level: 'debug' });
    // The parent closes its ends once it reads this line on fd 3.
    const ready = (await import('node:fs')).createWriteStream(null, { fd: 3 });
    ready.write('go\\n');
    process.stdin.once('data', () => {
      let n = 0;
      const timer = setInterval(() => {
        log.info('line', { n }); log.error('line', { n });
        if (++n === 50) { clearInterval(timer); ready.end(JSON.stringify({ uncaught }) + '\\n'); }
      }, 5);
    });
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
  });
  const side = child.stdio[3] as NodeJS.ReadableStream;
  let said = '';
  const result = new Promise<string>((resolve) =>
    side.on('data', (d: Buffer) => {
      said += d.toString();
      if (said.startsWith('go\n')) {
        if (!child.stdout!.destroyed) {
          child.stdout!.destroy();
          child.stderr!.destroy();
          child.stdin!.end('x');
        }
        const rest = said.slice(3);
        if (rest.endsWith('\n')) resolve(rest.trim());
      }
    }),
  );
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const report = JSON.parse(await result) as { uncaught: number };
  assert.equal(report, { uncaught: 0 }, 'EPIPE on the log streams was heard, not thrown');
  assert.is(await exited, 0, 'the process ended by itself once its work was done');
});

test.run();
