// tier: fast
/**
 * trials.json (payments/trial/trial.ts) on storage/json-table: the table suite through the method's own authorize and
 * precheck, and the file the code of 6ffb9b9 wrote (before the shared table) opens after the upgrade.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { TrialMethod } from '../../src/payments/trial/trial.ts';
import type { PaymentContext } from '../../src/payments/types.ts';
import { isSluiceError } from '../../src/errors.ts';
import { jsonTableSuite, withOldFile } from '../storage/json-table-suite.ts';
import { tempDirs } from '../helpers/temp.ts';

const T0 = 1_750_000_000_000;
const ctx = (mac: string, now: number, plan = 'taste', device?: string): PaymentContext => ({
  quote: { plan, trialEvery: 86_400n, trialLimit: 0, asset: '' } as never,
  request: { mac, payment: { method: 'trial', ...(device !== undefined && { device }) } } as never,
  now,
});
const mac = (n: number): string => `02:00:00:00:0a:${n.toString(16).padStart(2, '0')}`;

/** When device `mac` may have its next trial (s), or undefined when it may have one now. */
function nextTrial(trial: TrialMethod, c: PaymentContext): unknown {
  try {
    trial.precheck(c);
    return undefined;
  } catch (err) {
    if (isSluiceError(err, 'ERR_TRIAL_USED')) return err.details?.['next_at'];
    throw err;
  }
}

jsonTableSuite<TrialMethod>('trials.json (free trials)', {
  file: 'trials.json',
  open: async (dir) => TrialMethod.open(dir),
  put: async (trial, n) => {
    await trial.authorize(ctx(mac(n), T0 + n));
  },
  get: (trial, n) => nextTrial(trial, ctx(mac(n), T0 + 1000)),
  damaged: { code: 'ERR_TRIAL_STORE' },
});

const tempDir = tempDirs('sluice-trial-old-', test.after);

test(
  'a trials.json written by the code of 6ffb9b9 opens ' + 'after the upgrade: its devices have had their trial',
  async () => {
    const dir = withOldFile(
      tempDir(),
      new URL('../storage/fixtures/6ffb9b9/tables/trials.json', import.meta.url).pathname,
      'trials.json',
    );
    const trial = TrialMethod.open(dir);
    assert.is(trial.figures.remembered, 3);
    const now = 1_750_000_100_000;
    assert.is(nextTrial(trial, ctx('02:00:00:00:00:09', now)), Math.ceil((1_750_000_009_000 + 86_400_000) / 1000));
    assert.is(
      nextTrial(trial, ctx('02:00:00:00:00:99', now, 'taste', 'abcdefghijklmnop')),
      Math.ceil((1_750_000_009_000 + 86_400_000) / 1000),
      'by its device token',
    );
    assert.is(nextTrial(trial, ctx('02:00:00:00:00:0a', now)), Math.ceil((1_750_000_010_000 + 86_400_000) / 1000));
    assert.is(nextTrial(trial, ctx('02:00:00:00:00:0b', now)), undefined);
  },
);

test.run();
