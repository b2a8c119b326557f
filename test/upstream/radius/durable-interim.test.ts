// tier: peers; needs freeradius
/**
 * Durable before anyone is told, for RADIUS accounting: against a real FreeRADIUS, with the real flash journal (its
 * appends held here as a slow or stalled flash would hold them), an Interim-Update carries only the usage a checkpoint
 * has written, never what the meter billed since. After a kill -9 and a restart from the journal's files as they were,
 * the server sees octets that never go backwards, and the session's Stop carries its final billed total.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../../src/log.ts';
import { JournalStore } from '../../../src/sessions/journal.ts';
import { SessionManager } from '../../../src/sessions/index.ts';
import { SinkHost } from '../../../src/upstream/index.ts';
import { RadiusAccounting } from '../../../src/upstream/radius/accounting.ts';
import { RadiusClient } from '../../../src/radius/client.ts';
import type { UsageReport } from '../../../src/meter/ports.ts';
import { FreeRadius } from '../../peers/freeradius.ts';
import { CountingStore, useBytes } from '../../sessions/helpers.ts';
import { until } from '../../helpers/until.ts';

const log = createLogger({ level: 'error' });
const cleanups: Array<() => Promise<void> | void> = [];
test.after.each(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const tempDir = (prefix: string): string => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
};

/** The accounting sink of one daemon's run, heard through a SinkHost attached to its session manager. */
async function accountingOf(
  radius: FreeRadius,
  dir: string,
  sessions: SessionManager,
  o: { interimMs: number; recovered: boolean },
): Promise<{ acct: RadiusAccounting; host: SinkHost }> {
  const client = new RadiusClient({
    servers: [{ host: '127.0.0.1', port: radius.acctPort, secret: radius.secret }],
    timeoutMs: 200,
    retries: 0,
  });
  cleanups.push(() => client.close());
  const acct = new RadiusAccounting({
    dir,
    maxBytes: 1 << 20,
    client: () => client,
    nas: () => ({ identifier: 'router-test', ip: '127.0.0.1', calledStationId: 'router-test' }),
    interimMs: () => o.interimMs,
    maxInFlight: 8,
    maxBackoffMs: 500,
    log,
    session: (id) => sessions.get(id),
    recovered: () => ({ active: o.recovered ? sessions.list({ state: 'ACTIVE' }) : [], ended: [] }),
    syncIntervalMs: 50,
  });
  const host = new SinkHost({ log });
  host.add({
    name: 'radius',
    start: () => acct.start(),
    onEvent: (e) => acct.onEvent(e),
    stats: () => acct.stats(),
    close: () => acct.close(),
    destroy: () => acct.destroy(),
  });
  host.attach(sessions);
  await host.start();
  return { acct, host };
}

test(
  'an Interim-Update carries the usage on flash, not what the journal holds back; after a kill -9 and a restart ' +
    'the octets never go backwards and the Stop carries the final billed total',
  async () => {
    const radius = await FreeRadius.start();
    cleanups.push(() => radius.close());
    const journalDir = tempDir('sluice-journal-');
    const acctDir = tempDir('sluice-acct-');
    const store = new CountingStore(new JournalStore({ dir: journalDir }));
    const sessions = await SessionManager.open({ store, checkpointIntervalMs: 3_600_000 });
    const run = await accountingOf(radius, acctDir, sessions, { interimMs: 1000, recovered: false });
    let held: Promise<void> = Promise.resolve();
    cleanups.push(async () => {
      store.release();
      await held;
      await run.host.close();
      await sessions.close();
    });

    const mac = '02:00:00:00:0d:01';
    const { session } = await sessions.activate({
      mac,
      metric: 'bytes',
      allotment: 1n << 30n,
      payment: { method: 't', reference: 'durable-1', amount: 0n, asset: '', at: Date.now() },
    });
    const records = (server: FreeRadius, kind: string) =>
      server
        .detail()
        .filter((r) => r['Acct-Session-Id'] === session.id && r['Acct-Status-Type'] === kind)
        .map((r) => Number(r['Acct-Input-Octets']) + Number(r['Acct-Output-Octets']));
    await until(() => radius.detail().some((r) => r['Acct-Session-Id'] === session.id), 10_000, 'Start');
    const report = (bytes: number): UsageReport => ({
      mac,
      sessionId: session.id,
      metric: 'bytes',
      deltaBytes: bytes,
      deltaDownloadBytes: bytes,
      deltaUploadBytes: 0,
      remainingBytes: 1e9,
      exhausted: false,
    });

    // 4000 bytes billed and checkpointed (on flash), then 3000 more whose checkpoint the flash holds.
    useBytes(sessions, [[mac, 4000]]);
    sessions.reportUsage([report(4000)]);
    await sessions.checkpoint();
    store.hold = true;
    useBytes(sessions, [[mac, 3000]]);
    sessions.reportUsage([report(3000)]);
    held = sessions.checkpoint();
    const before = records(radius, 'Interim-Update').length;
    await until(() => records(radius, 'Interim-Update').length >= before + 2, 10_000, 'two Interim-Updates');
    assert.equal(
      records(radius, 'Interim-Update').slice(before),
      [4000, 4000],
      'the checkpointed 4000, not the 7000 the journal does not have',
    );

    // kill -9 while the second checkpoint is held: the restart reads the journal's files as they were.
    const flash = tempDir('sluice-journal-after-');
    cpSync(journalDir, flash, { recursive: true });
    run.acct.destroy();
    const told = Math.max(...records(radius, 'Interim-Update'));
    const reopened = new CountingStore(new JournalStore({ dir: flash }));
    const again = await SessionManager.open({ store: reopened, checkpointIntervalMs: 3_600_000 });
    cleanups.push(() => again.close());
    assert.is(again.get(session.id)?.bytes, 4000, 'the journal has the checkpointed usage only');
    const restarted = await accountingOf(radius, acctDir, again, { interimMs: 1000, recovered: true });
    cleanups.push(() => restarted.host.close());
    const afterRestart = records(radius, 'Interim-Update').length;
    await until(() => records(radius, 'Interim-Update').length > afterRestart, 10_000, 'an Interim after the restart');
    const resumed = records(radius, 'Interim-Update').slice(afterRestart);
    assert.ok(
      resumed.every((total) => total >= told),
      `never less than told before the kill: ${told} then ${resumed.join(',')}`,
    );

    // The restarted daemon bills 2500 more; the session's end carries every byte of it.
    useBytes(again, [[mac, 2500]]);
    again.reportUsage([report(2500)]);
    await again.end(session.id, 'admin');
    await until(() => records(radius, 'Stop').length === 1, 10_000, 'Stop');
    assert.equal(records(radius, 'Stop'), [6500], 'the final billed total');
    const all = records(radius, 'Interim-Update');
    assert.ok(
      all.every((total, i) => i === 0 || total >= all[i - 1]!),
      `Interim totals never go backwards: ${all.join(',')}`,
    );
  },
);

test.run();
