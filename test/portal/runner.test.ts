// tier: daemon
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { NdsctlRunner, parseSnapshot } from '../../src/portal/index.ts';
import { isSluiceError, type ErrorCode } from '../../src/errors.ts';
import { systemTimers, type TimerHandle, type Timers } from '../../src/time.ts';
import { NDSCTL_STANDIN, PortalStateFile, lockPathFor } from '../peers/ndsctl-state.ts';

const A = '02:00:00:00:0c:01';
const files: PortalStateFile[] = [];
const runners: NdsctlRunner[] = [];

function portal(knobs: Parameters<typeof PortalStateFile.create>[0] = {}): PortalStateFile {
  const file = PortalStateFile.create(knobs);
  files.push(file);
  file.enableLog();
  return file;
}

function runner(
  file: PortalStateFile | readonly string[],
  opts: Partial<ConstructorParameters<typeof NdsctlRunner>[0]> = {},
): NdsctlRunner {
  const r = new NdsctlRunner({
    command: Array.isArray(file) ? file : (file as PortalStateFile).command,
    busyBackoffMs: 20,
    timeoutMs: TIMEOUT_MS,
    ...opts,
  });
  runners.push(r);
  return r;
}

async function rejectsWith(promise: Promise<unknown>, code: ErrorCode, pattern?: RegExp): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    assert.ok(isSluiceError(err, code), `expected ${code}, got ${(err as { code?: string }).code}: ${String(err)}`);
    if (pattern) assert.match((err as Error).message, pattern);
    return err as Error;
  }
  throw new assert.Assertion({
    message: `expected rejection with ${code}`,
    operator: 'rejects',
    expects: code,
    actual: 'resolved',
  });
}

function runStandinDirectly(file: PortalStateFile, args: string[]): { pid: number; exited: Promise<number | null> } {
  const child = spawn(NDSCTL_STANDIN, ['--state', file.path, ...args], { stdio: 'ignore' });
  return { pid: child.pid!, exited: new Promise((resolve) => child.on('close', (code) => resolve(code))) };
}

/**
 * A runner timeout that a stand-in answering at once always meets, even on a loaded machine where starting its node
 * process takes seconds; a stand-in with LONG_LATENCY_MS never does.
 */
const TIMEOUT_MS = 10_000;
const LONG_LATENCY_MS = 120_000;

/**
 * Timers whose first ndsctl timeout (TIMEOUT_MS) fires on cue instead of after 10 s: the test fires it once the hanging
 * stand-in is seen holding its lock (so it is really running and really killed), which is what a timeout that ran out
 * would meet. Every other timer (busy backoff, reap grace, later calls' timeouts) is real.
 */
function timeoutOnCue(): { timers: Timers; fire: () => void } {
  let cued: { fn: () => void; handle: object } | null | undefined;
  const timers: Timers = {
    setTimeout: (fn, ms) => {
      if (ms !== TIMEOUT_MS || cued !== undefined) return systemTimers.setTimeout(fn, ms);
      cued = { fn, handle: {} };
      return cued.handle as TimerHandle;
    },
    clearTimeout: (handle) => {
      if (cued && handle === cued.handle) cued = null;
      else systemTimers.clearTimeout(handle);
    },
  };
  const fire = (): void => {
    assert.ok(cued, 'the ndsctl timeout is armed');
    const { fn } = cued;
    cued = null;
    fn();
  };
  return { timers, fire };
}

/** The stand-in of `file` holds its lock: started, past its lock, now sleeping out its latency. */
async function holdsLock(file: PortalStateFile): Promise<void> {
  const lock = lockPathFor(file.path);
  const deadline = Date.now() + 60_000;
  while (!(existsSync(lock) && Number(readFileSync(lock, 'utf8')) > 0)) {
    if (Date.now() > deadline) throw new Error('the stand-in never took its lock');
    await new Promise((r) => setTimeout(r, 20));
  }
}

test.after(async () => {
  for (const r of runners) await r.destroy();
  for (const f of files) f.cleanup();
});

test(
  'control: a stand-in started while another answers ' + 'collides (exit 4), so overlap cannot go unnoticed',
  async () => {
    // The first holds the lock for as long as the test needs (no race with the second one's start-up time), then is
    // stopped the way a timeout stops it; its handler releases the lock.
    const file = portal({ knobs: { latencyMs: LONG_LATENCY_MS } });
    const first = runStandinDirectly(file, ['json']);
    const lock = lockPathFor(file.path);
    const holder = () => {
      try {
        return readFileSync(lock, 'utf8');
      } catch {
        return '';
      }
    };
    for (const deadline = Date.now() + 60_000; holder() !== String(first.pid);) {
      assert.ok(Date.now() < deadline, 'the first stand-in took the lock');
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.is(await runStandinDirectly(file, ['json']).exited, 4, 'the second one answered busy');
    assert.is(file.logLines().filter((l) => l.includes(' busy-lock ')).length, 1);
    process.kill(first.pid, 'SIGTERM');
    assert.is(await first.exited, 143);
    assert.not.ok(existsSync(lock), 'lock released');
  },
);

test('many concurrent calls through one runner never overlap (no busy answer with a single attempt each)', async () => {
  const file = portal({ knobs: { latencyMs: 40 } });
  file.addClient(A, '10.0.0.2');
  const r = runner(file, { maxAttempts: 1 });
  const results = await Promise.all(Array.from({ length: 10 }, (_, i) => r.run(i % 2 === 0 ? ['json'] : ['json', A])));
  for (const res of results) assert.is(res.attempts, 1);
  const lines = file.logLines();
  assert.is(lines.length, 10);
  assert.ok(
    lines.every((l) => l.includes(' ok rc=0 ')),
    lines.join('\n'),
  );
  // FIFO: the stand-in saw the calls in submission order.
  assert.equal(
    lines.map((l) => l.split(' ').slice(4).join(' ')),
    results.map((_, i) => (i % 2 === 0 ? 'json' : `json ${A}`)),
  );
});

test('busy (exit 4) is retried with backoff: busy for 2 calls → success on the 3rd attempt', async () => {
  const file = portal({ knobs: { busyCalls: 2 } });
  const res = await runner(file).run(['json']);
  assert.is(res.attempts, 3);
  assert.is(parseSnapshot(res.stdout).clients.length, 0);
  assert.is(file.read().knobs.busyCalls, 0);
  assert.equal(
    file.logLines().map((l) => l.split(' ')[2]),
    ['busy-knob', 'busy-knob', 'ok'],
  );
});

test('busy attempts are bounded → ERR_NDSCTL_BUSY', async () => {
  const file = portal({ knobs: { busyCalls: 10 } });
  const err = await rejectsWith(runner(file, { maxAttempts: 3 }).run(['json']), 'ERR_NDSCTL_BUSY');
  assert.is((err as { details?: { attempts?: number } }).details?.attempts, 3);
  assert.is(file.read().knobs.busyCalls, 7);
});

test('timeout kills the child (and its lock is taken over), the next queued call still runs', async () => {
  const file = portal({ knobs: { latencyMs: LONG_LATENCY_MS } });
  const cue = timeoutOnCue();
  const r = runner(file, { timeoutMs: TIMEOUT_MS, timers: cue.timers });
  const slow = r.run(['json']);
  const next = r.runExclusive(async (exec) => {
    file.setKnobs({ latencyMs: 0 });
    return exec(['json']);
  });
  await holdsLock(file);
  cue.fire();
  await rejectsWith(slow, 'ERR_NDSCTL_TIMEOUT', new RegExp(`within ${TIMEOUT_MS} ms`));
  const res = await next;
  assert.is(res.attempts, 1, 'the stale lock of the killed stand-in did not answer busy');
  assert.is(parseSnapshot(res.stdout).declaredCount, 0);
  const lines = file.logLines();
  assert.is(lines.length, 1, 'the killed call never got to answer');
  const lock = lockPathFor(file.path);
  assert.not.ok(existsSync(lock), 'lock released');
});

test('the killed child is really gone', async () => {
  const file = portal({ knobs: { latencyMs: LONG_LATENCY_MS } });
  const cue = timeoutOnCue();
  const call = runner(file, { timeoutMs: TIMEOUT_MS, timers: cue.timers }).run(['json']);
  await holdsLock(file);
  cue.fire();
  await rejectsWith(call, 'ERR_NDSCTL_TIMEOUT');
  const pid = Number(readFileSync(lockPathFor(file.path), 'utf8'));
  assert.ok(pid > 0);
  assert.throws(
    () => process.kill(pid, 0),
    (err: NodeJS.ErrnoException) => err.code === 'ESRCH',
  );
});

test(
  'exit codes: 1 → ERR_NDSCTL_REJECTED with the portal ' + 'message, 3 → ERR_PORTAL_DOWN, 2 → ERR_NDSCTL_FAILED',
  async () => {
    const file = portal();
    const r = runner(file);
    await rejectsWith(r.run(['deauth', A]), 'ERR_NDSCTL_REJECTED', /Client 02:00:00:00:0c:01 not found\./);
    await rejectsWith(r.run(['auth', A]), 'ERR_NDSCTL_REJECTED', /Failed to authenticate client/);
    await rejectsWith(r.run(['frobnicate']), 'ERR_NDSCTL_REJECTED', /Unknown command: frobnicate/);
    await rejectsWith(r.run(['block', A]), 'ERR_NDSCTL_FAILED', /exit 2/);
    file.setDown(true);
    await rejectsWith(r.run(['json']), 'ERR_PORTAL_DOWN', /probably not started/);
    file.setDown(false);
    assert.is((await r.run(['json'])).attempts, 1);
    file.removeStateFile();
    await rejectsWith(r.run(['json']), 'ERR_PORTAL_DOWN');
  },
);

test(
  'missing binary → ERR_NDSCTL_MISSING; wrapper exit 127 ' + '→ ERR_NDSCTL_MISSING; other codes → ERR_NDSCTL_FAILED',
  async () => {
    await rejectsWith(runner(['/nonexistent/sluice/ndsctl']).run(['json']), 'ERR_NDSCTL_MISSING', /ENOENT/);
    await rejectsWith(
      runner(['sh', '-c', 'echo "ndsctl: not found" >&2; exit 127', 'sh']).run(['json']),
      'ERR_NDSCTL_MISSING',
      /not found/,
    );
    await rejectsWith(runner(['sh', '-c', 'exit 6', 'sh']).run(['json']), 'ERR_NDSCTL_FAILED', /exit 6/);
    await rejectsWith(runner(['sh', '-c', 'kill -9 $$', 'sh']).run(['json']), 'ERR_NDSCTL_FAILED', /SIGKILL/);
  },
);

test('stdout only: pgrep junk on stderr does not reach the parser', async () => {
  const file = portal({ knobs: { stderrJunk: true } });
  file.addClient(A, '10.0.0.2');
  const res = await runner(file).run(['json']);
  assert.match(res.stderr, /pgrep/);
  assert.not.match(res.stdout, /pgrep/);
  assert.is(parseSnapshot(res.stdout).clients[0]?.mac, A);
});

test('no 1 MiB limit: a multi-megabyte snapshot comes through whole', async () => {
  const file = portal();
  file.update((model) => {
    for (let i = 0; i < 6000; i++)
      model.addClient(
        `02:00:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`,
        `10.1.${(i >> 8) & 255}.${i & 255}`,
      );
  });
  const res = await runner(file).run(['json']);
  assert.ok(res.stdout.length > 4 * 1024 * 1024, `only ${res.stdout.length} bytes`);
  assert.is(parseSnapshot(res.stdout).clients.length, 6000);
});

test('runExclusive holds the queue: a call queued meanwhile runs only after it', async () => {
  const file = portal();
  const r = runner(file, { maxAttempts: 1 });
  const order: string[] = [];
  const held = r.runExclusive(async () => {
    order.push('exclusive-start');
    // Like the usage engine's worker: its own ndsctl, outside the runner, while the queue is held.
    const code = await runStandinDirectly(file, ['json']).exited;
    order.push(`exclusive-end:${code}`);
  });
  const queued = r.run(['json']).then(() => order.push('queued'));
  await Promise.all([held, queued]);
  assert.equal(order, ['exclusive-start', 'exclusive-end:0', 'queued']);
});

test.run();
