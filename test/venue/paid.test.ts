// tier: peers; needs initdb mosquitto
/**
 * A session that was paid for moves like a granted one (docs/roaming.md): a printed voucher (the local voucher book,
 * no chain needed) sold at one router of the venue follows its device to the other with exactly what was left, the
 * sale stays where it was made (the arriving session is paid by method `venue`, amount 0), and the fleet's collector,
 * on the same PostgreSQL as the lease service, counts the sale once in its revenue (a printed voucher's payment is
 * the sale, amount 0: the money was taken at the counter; no method with an amount runs here without a chain).
 * Invariant: usage at both routers plus what is left is what was bought.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { lease, MiB, sleep, ticksOk, venuePerTest } from './rig.ts';
import { collector } from '../fleet/rig.ts';
import type { DaemonLab } from '../daemon/harness.ts';

const D = '02:00:00:00:5e:07';
const venues = venuePerTest(test);
const PLAN =
  `\nconfig pricing 'data'\n\toption metric 'bytes'\n\toption step_size '1048576'\n\toption price_per_step '1000'` +
  `\n\toption max_steps '64'\n`;

async function traffic(lab: DaemonLab, bytes: number): Promise<void> {
  const from = await ticksOk(lab);
  await lab.waitFor(async () => (await ticksOk(lab)) >= from + 2, 60_000, 'a meter tick after the start');
  const before = BigInt((await lab.session(D)).used as string);
  lab.portal.addTraffic(D, bytes, 0);
  await lab.waitFor(
    async () => BigInt((await lab.session(D)).used as string) === before + BigInt(bytes),
    30_000,
    'the usage billed',
  );
}

test('a printed voucher sold at ra moves to rb with what was left; the sale is counted once', async () => {
  const venue = await venues.start(['ra', 'rb'], [D], { config: PLAN });
  const [ra, rb] = [venue.routers.get('ra')!, venue.routers.get('rb')!];
  const fleet = await collector(venue.db, venue.broker.url, venue.lines);
  try {
    const made = await ra.call('voucher_create', { plan: 'data', count: 1, steps: 8 });
    const [code] = made.codes as string[];
    const sold = (await ra.call('purchase', { mac: D, payment: { method: 'voucher', code: code! } })).session as Record<
      string,
      unknown
    >;
    const bought = 8n * BigInt(MiB);
    assert.is(String(sold['allotment']), String(bought));
    await ra.waitFor(() => ra.clientState(D) === 'Authenticated', 30_000, 'gate open at ra');
    await ra.waitFor(async () => (await lease(venue.db, D))?.['holder'] === 'ra', 30_000, 'the lease at ra');
    await traffic(ra, MiB + 4096);

    // The device leaves ra (idle there past the present window) and appears at rb.
    await sleep(1500);
    await rb.waitFor(
      async () => {
        if (rb.clientState(D) === 'Authenticated') return true;
        await rb.call('venue_claim', { mac: D });
        await sleep(300);
        return false;
      },
      60_000,
      'the session moved to rb',
    );
    const left = (await ra.call('session', { mac: D })).session as Record<string, unknown>;
    assert.equal([left['state'], left['end_cause']], ['TERMINATED', 'moved']);
    const usedAtRa = BigInt(left['used'] as string);
    const paidAtRa = left['payments'] as Array<Record<string, unknown>>;
    assert.equal(
      paidAtRa.map((p) => [p['method'], p['amount']]),
      [['voucher', '0']], // paid in cash at the counter: the sale is the payment, its amount 0
      'the sale stays where it was made',
    );
    const here = await rb.session(D);
    assert.equal([here['state'], here['metric'], here['plan']], ['ACTIVE', 'bytes', 'data']);
    assert.is(BigInt(here['allotment'] as string), bought - usedAtRa, 'exactly what was left');
    const paidAtRb = here['payments'] as Array<Record<string, unknown>>;
    assert.equal(
      paidAtRb.map((p) => [p['method'], p['amount']]),
      [['venue', '0']],
      'no second sale',
    );
    const row = (await lease(venue.db, D))!;
    assert.is(paidAtRb[0]!['reference'], `hall/${row['id'] as string}#2/ra`, 'the venue session, epoch 2, from ra');

    // Usage at rb; both routers together: what was bought, to the byte.
    await traffic(rb, 2 * MiB);
    const atRb = await rb.session(D);
    const usedAtRb = BigInt(atRb['used'] as string);
    assert.is(usedAtRa + usedAtRb + (BigInt(atRb['allotment'] as string) - usedAtRb), bought);
    assert.ok(usedAtRa + usedAtRb <= bought, 'usage within what was bought');

    // The fleet's revenue: the voucher's sale counted once (at ra), the handover's payment at 0 (at rb).
    await rb.waitFor(
      async () =>
        (await venue.db.query('SELECT 1 FROM payments')).length >= 2 &&
        (await venue.db.query(`SELECT 1 FROM revenue_days WHERE method = 'venue'`)).length === 1,
      60_000,
      'both payments collected',
    );
    const revenue = await venue.db.query<{ method: string; amount: string; payments: string }>(
      `SELECT method, sum(amount)::text AS amount, sum(payments)::text AS payments FROM revenue_days
       GROUP BY method ORDER BY method`,
    );
    assert.equal(
      revenue.map((r) => [r.method, r.amount, r.payments]),
      [
        ['venue', '0', '1'],
        ['voucher', '0', '1'],
      ],
    );
  } finally {
    await fleet.stop();
  }
});

test.run();
