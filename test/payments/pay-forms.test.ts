// tier: fast
// The pay page's voucher form is the voucher plugin's (PluginRegistrars.payForm): PaymentPlugins.lan(config)
// offers it when RADIUS takes vouchers, or a printed batch exists and its book read back; a damaged book leaves only
// RADIUS's. http/ reads the flag by key (PAY_FORM_KEYS) and names no method. Temp files, the real session manager.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PAY_FORM_KEYS, PaymentPlugins } from '../../src/payments/index.ts';
import { localVoucherPlugin, type VoucherBook } from '../../src/payments/local-voucher/index.ts';
import { VOUCHERS_FILE } from '../../src/payments/local-voucher/store.ts';
import type { Config } from '../../src/config/index.ts';
import type { Log } from '../../src/log.ts';
import { setup } from '../sessions/helpers.ts';
import { HOUR_PLAN } from './plans.ts';

const hour = HOUR_PLAN;
const quiet: Log = { debug() {}, info() {}, warn() {}, error() {} };

const configOf = (stateDir: string, radius: boolean): Config =>
  ({ main: { stateDir }, pricing: [hour], radius: { enabled: radius } }) as unknown as Config;

async function opened(stateDir: string): Promise<PaymentPlugins> {
  const env = await setup();
  const ctx = { config: configOf(stateDir, false), sessions: env.manager, log: quiet } as unknown as Parameters<
    typeof PaymentPlugins.open
  >[1];
  return PaymentPlugins.open([localVoucherPlugin], ctx);
}

test('the voucher form is the only form of the list, under the key GET / has always flagged it with', () => {
  assert.equal(PAY_FORM_KEYS, ['voucher']);
});

test('the voucher form: offered when RADIUS takes vouchers or a printed book runs; damaged, RADIUS alone', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-forms-'));
  try {
    const none = await opened(dir);
    assert.equal(none.lan(configOf(dir, false)).forms, { voucher: false }, 'no batch, no RADIUS');
    assert.equal(none.lan(configOf(dir, true)).forms, { voucher: true }, 'RADIUS takes vouchers');
    const ubus = none.ubusFaceOf('voucher') as { vouchers: VoucherBook };
    await ubus.vouchers.create({ plan: 'hour', count: 1n, steps: 1n });
    for (const close of none.closers()) await close();

    const printed = await opened(dir);
    assert.equal(printed.lan(configOf(dir, false)).forms, { voucher: true }, 'a batch exists and the book runs');
    for (const close of printed.closers()) await close();

    const path = join(dir, VOUCHERS_FILE);
    writeFileSync(path, readFileSync(path).subarray(0, -5));
    const damaged = await opened(dir);
    assert.equal(damaged.unavailable(), ['voucher']);
    assert.equal(damaged.lan(configOf(dir, false)).forms, { voucher: false }, 'the book cannot be read back');
    assert.equal(damaged.lan(configOf(dir, true)).forms, { voucher: true }, "RADIUS's vouchers still sell");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
