// tier: fast
// Free trials (payments/trial/trial.ts): a price-0 plan with trial_every, once per device per interval, keyed on the
// MAC and the pay page's device token, the ledger on flash before the grant; every other method refused the plan.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Merchant, Pricing } from '../../src/merchant/index.ts';
import { createPaymentRegistry, type PaymentMethod } from '../../src/payments/index.ts';
import { TrialMethod } from '../../src/payments/trial/trial.ts';
import { TRIALS_FILE } from '../../src/payments/trial/trial.ts';
import type { PricingPlan } from '../../src/config/types.ts';
import { setup } from '../sessions/helpers.ts';
import { rejectsWithCode, thrownCode } from '../helpers/assert.ts';
import { HOUR_PLAN } from './plans.ts';

const DAY = 86_400_000;
/** 15 minutes, once a day. */
const trialPlan: PricingPlan = {
  id: 'trial',
  metric: 'seconds',
  stepSize: 900n,
  pricePerStep: 0n,
  asset: '',
  currency: 'USDC',
  decimals: 6,
  minSteps: 1n,
  maxSteps: 1n,
  trialEvery: 86_400n,
};
const paid = HOUR_PLAN;
const cash: PaymentMethod = {
  name: 'cash',
  adminOnly: false,
  async authorize({ quote, now }) {
    return { method: 'cash', reference: `c-${now}-${Math.random()}`, amount: quote.price, asset: quote.asset, at: now };
  },
};

/** The code an async call is refused with. */
async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
  throw new Error('expected a refusal');
}

async function rig(dir = mkdtempSync(join(tmpdir(), 'sluice-trial-')), plan: PricingPlan = trialPlan) {
  const env = await setup();
  const trial = TrialMethod.open(dir);
  const merchant = new Merchant({
    pricing: new Pricing([paid, plan]),
    sessions: env.manager,
    payments: createPaymentRegistry([cash, trial]),
    clock: env.time,
  });
  const buy = (mac: string, device?: string) =>
    merchant.purchase({ mac, plan: 'trial', payment: { method: 'trial', ...(device !== undefined && { device }) } });
  return { ...env, dir, trial, merchant, buy };
}

test('a trial plan gives its allowance once per device per interval; the next one after the interval', async () => {
  const r = await rig();
  const first = await r.buy('02:00:00:00:0a:01');
  assert.is(first.session.allotment, 900n, "the plan's allowance");
  assert.is(first.receipt.paid, 0n);
  await r.manager.end(first.session.id, 'admin');
  const again = await codeOf(r.buy('02:00:00:00:0a:01'));
  assert.is(again, 'ERR_TRIAL_USED', 'the same MAC again the same day');
  // Asking for more steps changes nothing: a trial is its fixed allowance.
  const other = await r.merchant.purchase({
    mac: '02:00:00:00:0a:02',
    plan: 'trial',
    steps: 50n,
    payment: { method: 'trial' },
  });
  assert.is(other.session.allotment, 900n);
  await r.time.advance(DAY);
  const tomorrow = await r.buy('02:00:00:00:0a:01');
  assert.is(tomorrow.session.allotment, 900n, 'a day later');
  assert.equal(
    { ...r.trial.figures, remembered: undefined },
    { granted: 3, refused: 1, remembered: undefined, limited: 0 },
  );
  await r.manager.close();
  rmSync(r.dir, { recursive: true, force: true });
});

test(
  'trial_limit caps the trials of a plan per interval on this router, all devices together (a MAC and browser ' +
    'changed for each trial): the next from when the oldest leaves the interval',
  async () => {
    const r = await rig(undefined, { ...trialPlan, trialLimit: 2 });
    await r.buy('02:00:00:00:0d:01', 'tok_rotating-device-0001');
    await r.time.advance(60_000);
    await r.buy('02:00:00:00:0d:02', 'tok_rotating-device-0002');
    let refusal: unknown;
    try {
      await r.buy('02:00:00:00:0d:03', 'tok_rotating-device-0003');
    } catch (err) {
      refusal = err;
    }
    assert.is(
      (refusal as { code: string }).code,
      'ERR_TRIAL_LIMIT',
      'a third new device (new MAC, new browser) within the day',
    );
    const first = JSON.parse(readFileSync(join(r.dir, TRIALS_FILE), 'utf8'))['trial|mac:02:00:00:00:0d:01'] as number;
    assert.is(
      (refusal as { details: { next_at: number } }).details.next_at,
      Math.ceil((first + DAY) / 1000),
      'when the first trial leaves the interval',
    );
    assert.is(r.manager.list().length, 2, 'nothing granted past the cap');
    assert.is(r.trial.figures.limited, 1);
    await r.time.advance(DAY - 60_000);
    await r.buy('02:00:00:00:0d:03', 'tok_rotating-device-0003');
    assert.is(r.manager.list().length, 3, 'once the first trial is a day old, one more');
    await r.manager.close();
    rmSync(r.dir, { recursive: true, force: true });
  },
);

test('trial_limit 0: no cap', async () => {
  const r = await rig(undefined, { ...trialPlan, trialLimit: 0 });
  for (let i = 0; i < 5; i++) await r.buy(`02:00:00:00:0e:0${i}`);
  assert.is(r.manager.list().length, 5);
  await r.manager.close();
  rmSync(r.dir, { recursive: true, force: true });
});

test(
  'a device that rotates its MAC but keeps its browser (device token) gets no second trial; the ledger survives ' +
    'a restart',
  async () => {
    const r = await rig();
    const token = 'tok_0123456789abcdef';
    await r.buy('02:00:00:00:0b:01', token);
    assert.is(await codeOf(r.buy('02:00:00:00:0b:99', token)), 'ERR_TRIAL_USED', 'a new private MAC, same browser');
    assert.is(
      await codeOf(r.buy('02:00:00:00:0b:01', 'tok_another-browser-0001')),
      'ERR_TRIAL_USED',
      'same MAC, another browser',
    );
    const onDisk = JSON.parse(readFileSync(join(r.dir, TRIALS_FILE), 'utf8')) as Record<string, number>;
    assert.ok(`trial|mac:02:00:00:00:0b:01` in onDisk && `trial|device:${token}` in onDisk, 'written before the grant');
    await r.manager.close();
    const again = await rig(r.dir);
    assert.is(await codeOf(again.buy('02:00:00:00:0b:01')), 'ERR_TRIAL_USED', 'remembered across a restart');
    assert.is(await codeOf(again.buy('02:00:00:00:0b:02', 'bad token!')), 'ERR_INVALID_ARGUMENT');
    await again.manager.close();
    rmSync(r.dir, { recursive: true, force: true });
  },
);

test('a trial plan is refused to paying methods, and the trial method refuses paid plans', async () => {
  const r = await rig();
  await rejectsWithCode(
    r.merchant.purchase({ mac: '02:00:00:00:0c:01', plan: 'trial', payment: { method: 'cash' } }),
    'ERR_TRIAL_PLAN',
  );
  await rejectsWithCode(
    r.merchant.purchase({ mac: '02:00:00:00:0c:01', plan: 'hour', payment: { method: 'trial' } }),
    'ERR_TRIAL_PLAN',
  );
  assert.is(r.manager.list().length, 0, 'nothing granted');
  await r.manager.close();
  rmSync(r.dir, { recursive: true, force: true });
});

test('a trial that cannot be written is not granted; a damaged ledger refuses the method at start', async () => {
  const r = await rig();
  const path = join(r.dir, TRIALS_FILE);
  rmSync(path, { force: true });
  // A directory where the ledger goes: the atomic write's rename fails (as root too, unlike a read-only directory).
  mkdirSync(path);
  assert.is(await codeOf(r.buy('02:00:00:00:0d:01')), 'ERR_TRIAL_STORE');
  assert.is(r.manager.list().length, 0, 'not granted');
  rmSync(path, { recursive: true, force: true });
  assert.ok(await r.buy('02:00:00:00:0d:01'), 'the same device once it can be written: it was not counted');
  await r.manager.close();
  writeFileSync(path, '{"trial|mac:02:00:00:00:0d:01": "yesterday"}');
  chmodSync(path, 0o600);
  assert.is(
    thrownCode(() => TrialMethod.open(r.dir)),
    'ERR_TRIAL_STORE',
  );
  rmSync(r.dir, { recursive: true, force: true });
});

test.run();
