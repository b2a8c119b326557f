// tier: fast
/**
 * RADIUS accounting's sessions.json (upstream/radius/tracked-state.ts) on storage/json-table: the table suite, the
 * file the code of 6ffb9b9 wrote opens after the upgrade, and the one behaviour that changed with it: a damaged
 * file used to be read as empty (sessions reported from zero octets, the ones it held never stopped); now accounting
 * refuses to start (ERR_RADIUS_STATE), the host runs without it, the damage is counted and the file kept aside.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isSluiceError } from '../../../src/errors.ts';
import { damagedTables } from '../../../src/storage/index.ts';
import { SinkHost } from '../../../src/upstream/index.ts';
import { RadiusAccounting, type AccountingOptions } from '../../../src/upstream/radius/accounting.ts';
import { openTrackedState, type TrackedState } from '../../../src/upstream/radius/tracked-state.ts';
import { recordingLog } from '../../helpers/log.ts';
import { tempDirs } from '../../helpers/temp.ts';
import { poolRequests } from '../../helpers/pool-requests.ts';
import { FakeTime } from '../../helpers/fake-time.ts';
import type { Session } from '../../../src/sessions/index.ts';
import type { SinkEvent } from '../../../src/upstream/sink.ts';
import { jsonTableSuite, withOldFile } from '../../storage/json-table-suite.ts';

const tracked = (n: number): TrackedState => ({
  id: `s${n}`,
  user: `user${n}`,
  mac: '02:00:00:00:00:0b',
  ip: n % 2 ? '10.0.0.11' : null,
  startedAt: 1_750_000_000_000 + n,
  interimMs: n % 2 ? 300_000 : null,
  classes: n % 2 ? ['Y2xhc3M='] : [],
  up: 2n ** 40n + BigInt(n),
  down: BigInt(n),
});

jsonTableSuite('sessions.json (RADIUS accounting)', {
  file: 'sessions.json',
  open: (dir, atStart) => openTrackedState(dir, { atStart: atStart === true }),
  put: async (table, n) => {
    table.set(tracked(n));
    await table.flush();
  },
  get: (table, n) => table.get(`s${n}`),
  delete: async (table, n) => {
    await table.delete(`s${n}`);
  },
  damaged: { code: 'ERR_RADIUS_STATE' },
});

const tempDir = tempDirs('sluice-radius-state-', test.after);

/** RADIUS accounting on `dir` with a lab NAS and no server; `options` adds to or replaces what a test needs. */
function accountingOn(dir: string, options: Partial<AccountingOptions> = {}): RadiusAccounting {
  return new RadiusAccounting({
    dir,
    maxBytes: 1 << 20,
    client: () => assert.unreachable('no request may be sent') as never,
    nas: () => ({ identifier: 'router-test', ip: '127.0.0.1', calledStationId: 'router-test' }),
    interimMs: () => 300_000,
    maxInFlight: 8,
    log: recordingLog(() => undefined),
    session: () => null,
    recovered: () => ({ active: [], ended: [] }),
    ...options,
  });
}

test('a sessions.json written by the code of 6ffb9b9 opens after the upgrade, octets past 2^32 exact', async () => {
  const dir = withOldFile(
    tempDir(),
    new URL('../../storage/fixtures/6ffb9b9/tables/sessions.json', import.meta.url).pathname,
    'sessions.json',
  );
  const table = await openTrackedState(dir);
  assert.equal(table.get('s1'), {
    id: 's1',
    user: 'alice',
    mac: '02:00:00:00:00:0b',
    ip: '10.0.0.11',
    startedAt: 1_750_000_014_000,
    interimMs: 300_000,
    classes: ['Y2xhc3M='],
    up: 12_345_678_901n,
    down: 98_765_432_109n,
  });
  assert.equal(table.get('s2'), {
    id: 's2',
    user: '02-00-00-00-00-0C',
    mac: '02:00:00:00:00:0c',
    ip: null,
    startedAt: 1_750_000_015_000,
    interimMs: null,
    classes: [],
    up: 0n,
    down: 0n,
  });
});

test(
  'a damaged sessions.json: accounting does not start (ERR_RADIUS_STATE, was: read as empty), the host runs ' +
    'without it, counted, kept aside',
  async () => {
    const dir = tempDir();
    writeFileSync(
      join(dir, 'sessions.json'),
      '{"s1":{"user":"alice","mac":"02:00:00:00:00:0b","ip":null,"startedAt":17500000',
    );
    const lines: string[] = [];
    const log = recordingLog((level, message, fields) =>
      lines.push(`${level} ${message} ${JSON.stringify(fields ?? {})}`),
    );
    const accounting = (): RadiusAccounting => accountingOn(dir, { log });
    const acct = accounting();
    const counted = damagedTables()['sessions.json'] ?? 0;
    await acct.start().then(
      () => assert.unreachable('accounting started on a damaged sessions.json'),
      (err: unknown) =>
        assert.ok(isSluiceError(err, 'ERR_RADIUS_STATE') && err.details?.['damaged'] === true, String(err)),
    );
    assert.is(damagedTables()['sessions.json'], counted + 1);
    assert.is(readdirSync(dir).filter((f) => f.startsWith('sessions.json.damaged-')).length, 1);
    assert.not.ok(readdirSync(dir).includes('outbox'), 'nothing opened before the refusal');
    // Through the host, as the daemon runs it: the sink is left out, logged with the code, the rest runs.
    const host = new SinkHost({ log });
    const again = accounting();
    host.add({
      name: 'radius',
      start: () => again.start(),
      onEvent: (e) => again.onEvent(e),
      stats: () => again.stats(),
      close: () => again.close(),
      destroy: () => again.destroy(),
    });
    await host.start();
    assert.ok(
      lines.some((l) => l.startsWith('error upstream sink cannot start') && l.includes('ERR_RADIUS_STATE')),
      lines.join('\n'),
    );
    await host.close();
  },
);

test('sessions.json is written a minute after a session starts, then octets alone only once an hour', async () => {
  const dir = tempDir();
  const time = new FakeTime();
  const acct = accountingOn(dir, {
    client: () => ({ request: () => Promise.reject(new Error('no server here')) }) as never,
    clock: time,
    timers: time,
  });
  await acct.start();
  const session = {
    id: 's1',
    mac: '02:00:00:00:00:0b',
    ip: '10.0.0.11',
    user: null,
    createdAt: time.now(),
    startedAt: time.now(),
    bytes: 0,
    payments: [],
    rates: null,
  } as unknown as Session;
  acct.onEvent({ type: 'started', at: time.now(), session });
  const file = join(dir, 'sessions.json');
  const written = (): string => {
    try {
      return `${statSync(file).ino}:${statSync(file).size}`;
    } catch {
      return 'none';
    }
  };
  // The save's file I/O is real: let it land before looking.
  const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 100));
  await time.advance(61_000);
  await settle();
  const first = written();
  assert.is.not(first, 'none', 'a new session is saved within a minute');
  const usage = (): SinkEvent =>
    ({
      type: 'usage',
      at: time.now(),
      usage: [{ sessionId: 's1', deltaUploadBytes: 1000, deltaDownloadBytes: 9000 }],
      figuresInto: () => false,
    }) as unknown as SinkEvent;
  for (let minute = 0; minute < 30; minute++) {
    acct.onEvent(usage());
    await time.advance(60_000);
  }
  await settle();
  assert.is(written(), first, 'half an hour of octets alone: not written');
  for (let minute = 0; minute < 31; minute++) {
    acct.onEvent(usage());
    await time.advance(60_000);
  }
  await settle();
  assert.is.not(written(), first, 'octets alone are saved after an hour');
  await acct.close();
});

test("started at the daemon's start, accounting reads sessions.json without the thread pool", async () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'sessions.json'), '{"not":"the table"}');
  const acct = accountingOn(dir, { atStart: true });
  // Refused on the table it read, before the outbox is opened: the read is all the start did.
  let refused: unknown = null;
  const n = await poolRequests(() => acct.start().catch((err: unknown) => (refused = err)));
  assert.ok(isSluiceError(refused, 'ERR_RADIUS_STATE'), String(refused));
  assert.is(n, 0);
});

test.run();
