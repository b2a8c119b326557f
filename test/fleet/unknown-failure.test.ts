// tier: peers; needs initdb mosquitto
/**
 * A failure the database did not answer with (no SQLSTATE) is the message's only when it comes again while the
 * database answers: between a real mosquitto and PostgreSQL 15, the collector's database is wrapped so that its
 * calls fail with an error in words db/errors.ts does not know. While every call fails (the database away, as far
 * as the collector can tell), a payment is held, not refused, and stored once the calls succeed again; while only
 * writes fail and the database answers, a payment is refused after one more try, counted, and the next one stored.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Db } from '../../src/fleet/db/index.ts';
import { collector, FakeRouter, fleetPeers, freshDb, waitFor } from './rig.ts';

const peers = fleetPeers(test);
const { open } = peers;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Words no list of pg's knows, and no code: what a connection broken some new way might say. */
const unknownFailure = () => new Error('the line to the database went quiet');

test('held while the database does not answer; refused after one more try while it does', async () => {
  const db = await freshDb(peers.pg);
  open.push(db);
  /** Every call fails while `away`; the next `writesFailing` transactions fail while the database answers. */
  const fault = { away: false, writesFailing: 0 };
  const flaky = new Proxy(db, {
    get(target, key) {
      const value = Reflect.get(target, key) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        if (fault.away) return Promise.reject(unknownFailure());
        if (key === 'transaction' && fault.writesFailing > 0) {
          fault.writesFailing--;
          return Promise.reject(unknownFailure());
        }
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  }) as Db;
  const lines: string[] = [];
  const c = await collector(flaky, peers.broker.url, lines, { clientId: 'unknown-c', group: 'unknown-g' });
  open.push(c);
  const router = await FakeRouter.connect('r', peers.broker.url);
  open.push(router);
  const paid = async (reference: string) =>
    (await db.query('SELECT 1 FROM payments WHERE reference = $1', [reference])).length > 0;

  // The database away, as far as the collector can tell: the payment waits, nothing is refused.
  fault.away = true;
  await router.started('held', '3', 'held-ref');
  await sleep(1500);
  assert.is(c.stats().rejected, 0, `nothing refused while the database does not answer: ${lines.join('\n')}`);
  fault.away = false;
  await waitFor(
    () => paid('held-ref'),
    30_000,
    `the held payment stored once the database answers: ${lines.join('\n')}`,
  );

  // Writes fail while the database answers: the first try and the one more both fail, so the message is refused.
  fault.writesFailing = 2;
  await router.started('bug', '4', 'bug-ref');
  await waitFor(() => c.stats().rejected >= 1, 30_000, `the message refused: ${lines.join('\n')}`);
  await router.started('after', '5', 'after-ref');
  await waitFor(() => paid('after-ref'), 30_000, 'the next payment stored');
  assert.not.ok(await paid('bug-ref'), 'the refused message is not stored');
  const [row] = await db.query<{ reason: string }>("SELECT reason FROM fleet_rejects WHERE router = 'r'");
  assert.match(row!.reason, /not stored/);
});

test.run();
