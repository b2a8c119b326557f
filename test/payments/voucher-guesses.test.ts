// tier: fast
// Wrong voucher codes under floods (payments/voucher/guesses.ts, docs/vouchers.md "Guessing"): the router-wide bound
// holds whatever the number of addresses, and a customer with a valid ticket is sold at once however many addresses
// flood the door; a customer who mistyped waits his turn, and keeps it for as long as he was told to wait. Fake time,
// the real plugin, merchant and session manager (voucher-rig.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rmSync } from 'node:fs';
import { ROUTER_DEBT_MAX, ROUTER_GUESSES_PER_MINUTE } from '../../src/payments/voucher/guesses.ts';
import { PlaceCounts } from '../../src/payments/voucher/place-counts.ts';
import type { SluiceError } from '../../src/errors.ts';
import { codeOf, rig } from './voucher-rig.ts';

type Rig = Awaited<ReturnType<typeof rig>>;
const hex = (n: number) => (n & 255).toString(16).padStart(2, '0');
/** The n-th address never used before: its own MAC and IP. */
const fresh = (n: number) => ({
  mac: `02:00:${hex(n >> 24)}:${hex(n >> 16)}:${hex(n >> 8)}:${hex(n)}`,
  ip: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`,
});

/** A flood's counts: wrong codes looked at (refused "not valid") and refused unlooked (429). */
function flood(r: Rig) {
  const counts = { rejected: 0, limited: 0 };
  const guess = async (who: { mac: string; ip: string }): Promise<void> => {
    const e = await codeOf(r.redeem(who.mac, '2222-2222-22', who.ip));
    if (e.code === 'ERR_VOUCHER_REJECTED') counts.rejected++;
    else if (e.code === 'ERR_VOUCHER_GUESS_LIMIT') counts.limited++;
    else throw new Error(e.code);
  };
  return { counts, guess };
}

/** A valid ticket's first ask: null when sold, else the refusal. */
const ask = (r: Rig, who: { mac: string; ip: string }, code: string) =>
  r.redeem(who.mac, code, who.ip).then(
    () => null,
    (err: SluiceError) => err,
  );

const HONEST = { mac: '02:00:00:00:cc:01', ip: '10.250.1.5' };

test('the honest customer first: behind 40 new addresses joining a flood, a valid ticket sells at once', async () => {
  const r = await rig();
  const [code] = (await r.book.create({ plan: 'hour', count: 1n, steps: 1n })).codes as string[];
  const { counts, guess } = flood(r);
  // A flood has emptied the router's bucket; then 40 addresses it never used join, every one asking every second.
  const emptying = Array.from({ length: 100 }, (_, i) => fresh(1000 + i));
  const joining = Array.from({ length: 40 }, (_, i) => fresh(3000 + i));
  for (let s = 0; s < 60; s++) {
    for (const a of s < 50 ? emptying : [...emptying, ...joining]) await guess(a);
    await r.time.advance(1000);
  }
  assert.ok(counts.limited > 0, 'the flood is over the bound');
  const refused = await ask(r, HONEST, code!);
  assert.is(refused, null, `sold at once, not ${refused?.code} ${JSON.stringify(refused?.details)}`);
  assert.ok(
    counts.rejected <= ROUTER_GUESSES_PER_MINUTE + 60 + 140,
    `${counts.rejected} wrong codes looked at in a minute: a full bucket, a minute's refill, one each on credit`,
  );
  await r.close();
  rmSync(r.dir, { recursive: true, force: true });
});

test(
  'the honest customer first: 30 addresses rotated to new ones every minute; the customer sells at once; over ten ' +
    'minutes the codes looked at stay at the rate of the bound',
  async () => {
    const r = await rig();
    const codes = (await r.book.create({ plan: 'hour', count: 10n, steps: 1n })).codes as string[];
    const { counts, guess } = flood(r);
    let next = 0;
    for (let minute = 0; minute < 10; minute++) {
      const attackers = Array.from({ length: 30 }, () => fresh(5000 + next++));
      for (let s = 0; s < 60; s++) {
        for (const a of attackers) await guess(a);
        if (s === 30) {
          const refused = await ask(r, { ...HONEST, mac: `02:00:00:00:cd:${hex(minute)}` }, codes[minute]!);
          assert.is(refused, null, `minute ${minute}: ${refused?.code} ${JSON.stringify(refused?.details)}`);
        }
        await r.time.advance(1000);
      }
    }
    const bound = ROUTER_GUESSES_PER_MINUTE * 11;
    assert.ok(counts.rejected <= bound, `${counts.rejected} wrong codes looked at in ten minutes (≤ ${bound})`);
    await r.close();
    rmSync(r.dir, { recursive: true, force: true });
  },
);

test(
  'the bound holds whatever the number of addresses: a new MAC and IP on every guess gets the credit once, no more; ' +
    'past it a valid ticket waits its turn too (429 "on this network"), never "not valid"',
  async () => {
    const r = await rig();
    const [code] = (await r.book.create({ plan: 'hour', count: 1n, steps: 1n })).codes as string[];
    const { counts, guess } = flood(r);
    let next = 0;
    // 300 new addresses a minute for ten minutes (IPv6 privacy addresses and rotated MACs cost nothing).
    for (let s = 0; s < 600; s++) {
      for (let i = 0; i < 5; i++) await guess(fresh(100_000 + next++));
      await r.time.advance(1000);
    }
    for (let i = 0; i < 5; i++) await guess(fresh(100_000 + next++));
    const bound = ROUTER_GUESSES_PER_MINUTE * 11 + ROUTER_DEBT_MAX;
    assert.ok(counts.rejected <= bound, `${counts.rejected} wrong codes looked at in ten minutes (≤ ${bound})`);
    assert.ok(counts.rejected >= ROUTER_GUESSES_PER_MINUTE * 10, `${counts.rejected}: the bound is a rate, not a lock`);
    const refused = await ask(r, HONEST, code!);
    assert.equal([refused?.code, refused?.details?.scope], ['ERR_VOUCHER_GUESS_LIMIT', 'router']);
    await r.close();
    rmSync(r.dir, { recursive: true, force: true });
  },
);

test(
  'a /24 flooding for ten minutes: 60 wrong codes a minute between its addresses; the honest code sells at once; ' +
    'one who mistyped waits his turn behind the flood, not for good',
  async () => {
    const r = await rig();
    const [code] = (await r.book.create({ plan: 'hour', count: 1n, steps: 1n })).codes as string[];
    // An attacker on a /24, a new MAC on each request and every address used, one wrong code per address.
    let sent = 0;
    const { counts, guess: guessAs } = flood(r);
    const guess = (i: number) => {
      const n = sent++;
      return guessAs({ mac: `02:00:00:${hex(n >> 16)}:${hex(n >> 8)}:${hex(n)}`, ip: `10.7.0.${(i % 254) + 1}` });
    };
    // Ten minutes of a flood from 250 addresses, each asking every second: the router answers 60 a minute, not 1,250.
    for (let s = 0; s < 600; s++) {
      for (let i = 0; i < 250; i += 25) await guess((s * 7 + i) % 250);
      await r.time.advance(1000);
    }
    assert.ok(counts.rejected <= 60 + 10 * 60, `${counts.rejected} wrong codes looked at in ten minutes`);
    assert.ok(counts.rejected >= 9 * 60, `${counts.rejected}: the bound is a rate, not a lock`);
    assert.ok(counts.limited > 0);
    for (let i = 0; i < 250; i += 25) await guess(i);
    const retryUntilSold = async (who: { mac: string; ip: string }, typed: string): Promise<number> => {
      for (let s = 0; s < 600;) {
        const e = await ask(r, who, typed);
        if (e === null) return s;
        assert.equal([e.code, e.details?.scope], ['ERR_VOUCHER_GUESS_LIMIT', 'router']);
        const wait = e.details?.retry_after as number;
        assert.ok(wait >= 1 && wait <= 300, `Retry-After ${wait}`);
        // He asks again when told, as the pay page does; the flood goes on meanwhile.
        for (let t = 0; t < wait; t++, s++) {
          for (let i = 0; i < 250; i += 25) await guess((s * 7 + i) % 250);
          await r.time.advance(1000);
        }
      }
      throw new Error('never sold');
    };
    assert.is(await retryUntilSold(HONEST, code!), 0, 'the honest code sold at its first ask');
    // One who mistyped first waits behind the flood's addresses, not for good.
    const [code2] = (await r.book.create({ plan: 'hour', count: 1n, steps: 1n })).codes as string[];
    const clumsy = { mac: '02:00:00:00:cc:02', ip: '10.7.1.6' };
    assert.is((await codeOf(r.redeem(clumsy.mac, '2222-3333-44', clumsy.ip))).code, 'ERR_VOUCHER_REJECTED');
    const clumsySeconds = await retryUntilSold(clumsy, code2!);
    assert.ok(clumsySeconds <= 300, `the mistyping customer's code sold ${clumsySeconds} s on`);
    // 61 wrong codes at one instant from 61 new addresses: all looked at (the 61st on credit); one of them, now
    // marked, waits until the credit is paid back and a guess is there: two seconds, and the message says why.
    await r.time.advance(20 * 60_000);
    const burst = [];
    for (let i = 0; i < 61; i++)
      burst.push(await codeOf(r.redeem(`02:00:00:00:ee:${hex(i)}`, '2222-2222-22', `10.9.0.${i + 1}`)));
    assert.is(burst.filter((e) => e.code === 'ERR_VOUCHER_REJECTED').length, 61);
    const again = await codeOf(r.redeem('02:00:00:00:ee:00', '2222-2222-22', '10.9.0.1'));
    assert.equal([again.code, again.details], ['ERR_VOUCHER_GUESS_LIMIT', { retry_after: 2, scope: 'router' }]);
    await r.close();
    rmSync(r.dir, { recursive: true, force: true });
  },
);

test(
  'a customer who mistyped keeps his place for as long as he was told to wait: asking again then, as the pay page ' +
    'does, he is next',
  async () => {
    const r = await rig();
    const [code] = (await r.book.create({ plan: 'hour', count: 1n, steps: 1n })).codes as string[];
    const { guess } = flood(r);
    // 100 addresses that typed wrong codes, each asking every second.
    const queue = Array.from({ length: 100 }, (_, i) => fresh(2000 + i));
    for (const a of queue) await guess(a);
    await r.time.advance(1000);
    for (const a of queue) await guess(a);
    const clumsy = { mac: '02:00:00:00:cc:03', ip: '10.250.1.7' };
    assert.is((await codeOf(r.redeem(clumsy.mac, '2222-3333-44', clumsy.ip))).code, 'ERR_VOUCHER_REJECTED');
    const told = await ask(r, clumsy, code!);
    assert.is(told?.code, 'ERR_VOUCHER_GUESS_LIMIT');
    const wait = told!.details!.retry_after as number;
    assert.ok(wait > 60, `told ${wait} s: longer than a minute, longer than any fixed hold`);
    for (let s = 0; s < wait; s++) {
      for (const a of queue) await guess(a);
      await r.time.advance(1000);
    }
    // Next in turn: sold now, or at the router's next guess (a second or two on).
    let refused = await ask(r, clumsy, code!);
    const then = refused?.details?.retry_after as number | undefined;
    assert.ok(refused === null || then! <= 2, `asked again after ${wait} s: told ${then} s more`);
    if (refused) {
      await r.time.advance(then! * 1000);
      refused = await ask(r, clumsy, code!);
    }
    assert.is(refused, null);
    await r.close();
    rmSync(r.dir, { recursive: true, force: true });
  },
);

test("a refused guess's error is built without a stack trace (a flood makes thousands), its words kept", async () => {
  const r = await rig();
  const who = fresh(0xab0000);
  const refusals: SluiceError[] = [];
  for (let i = 0; i < 6; i++) refusals.push((await ask(r, who, '2222-2222-22'))!);
  const [wrong, limited] = [refusals[0]!, refusals[5]!];
  assert.equal(
    [wrong.code, wrong.message, wrong.details],
    ['ERR_VOUCHER_REJECTED', 'this voucher code is not valid; please check it', { reason: 'unknown' }],
  );
  assert.is(limited.code, 'ERR_VOUCHER_GUESS_LIMIT');
  assert.match(limited.message, /^too many wrong voucher codes from this device: please wait \d+ seconds, then type/);
  for (const e of [wrong, limited]) assert.is(e.stack, `SluiceError: ${e.message}`);
  assert.is(Error.stackTraceLimit, 10, "every other error's stack is captured as before");
  await r.close();
  rmSync(r.dir, { recursive: true, force: true });
});

test("the waiters' places: how many are held before a place, as places are taken and given up", () => {
  const places = new PlaceCounts(100);
  const held = new Set<number>();
  const before = (place: number) => [...held].filter((p) => p < place).length;
  for (const p of [1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 100]) {
    places.add(p, 1);
    held.add(p);
  }
  for (const p of [2, 21, 100]) {
    places.add(p, -1);
    held.delete(p);
  }
  for (let p = 1; p <= 100; p++) assert.is(places.before(p), before(p), `before ${p}`);
  places.clear();
  assert.is(places.before(100), 0);
});

test.run();
