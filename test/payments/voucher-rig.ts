/**
 * Printed vouchers' unit rig: the plugin opened over a real session manager on fake time, a merchant selling through
 * its `voucher` door, a temp state dir (the tests of payments/local-voucher and voucher/guesses share it).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Merchant, Pricing } from '../../src/merchant/index.ts';
import { createPaymentRegistry } from '../../src/payments/index.ts';
import type { VoucherMethod } from '../../src/payments/voucher/voucher.ts';
import { openLocalVouchers } from '../../src/payments/local-voucher/index.ts';
import type { VoucherBook } from '../../src/payments/local-voucher/index.ts';
import type { LocalVoucherMethod } from '../../src/payments/local-voucher/method.ts';
import type { SluiceError } from '../../src/errors.ts';
import type { Config } from '../../src/config/index.ts';
import type { PricingPlan } from '../../src/config/types.ts';
import { setup } from '../sessions/helpers.ts';
import { HOUR_PLAN } from './plans.ts';

export const hour = HOUR_PLAN;
export const gig: PricingPlan = {
  id: 'gig',
  metric: 'bytes',
  stepSize: 1n << 30n,
  pricePerStep: 1n,
  asset: '',
  currency: 'USDC',
  decimals: 6,
  minSteps: 1n,
  maxSteps: 5n,
  timeLimit: 86_400n,
};
export const START = Date.UTC(2026, 10, 25, 9, 0, 0);

export async function codeOf(
  p: Promise<unknown>,
): Promise<{ code: string; details?: Readonly<Record<string, unknown>> | undefined }> {
  try {
    await p;
  } catch (err) {
    return {
      code: (err as SluiceError).code ?? String(err),
      ...((err as SluiceError).details && { details: (err as SluiceError).details }),
    };
  }
  throw new Error('expected a refusal');
}

/** The plugin opened over a real session manager on fake time, and a merchant selling through its `voucher`. */
export async function rig(dir = mkdtempSync(join(tmpdir(), 'sluice-lv-')), radius: VoucherMethod | null = null) {
  const env = await setup();
  await env.time.advance(START - env.time.now());
  const http = { host: '192.168.1.1', port: 2122, portalUrl: '' };
  const config = { main: { stateDir: dir }, pricing: [hour, gig], http } as unknown as Config;
  const part = await openLocalVouchers(
    { config, sessions: env.manager, onSession: env.manager.on.bind(env.manager), methodBehind: () => radius },
    env.time,
  );
  const merchant = new Merchant({
    pricing: new Pricing([hour, gig]),
    sessions: env.manager,
    payments: createPaymentRegistry(part.methods),
    clock: env.time,
  });
  const book = part.ubus!.vouchers as VoucherBook;
  const method = part.methods[0] as LocalVoucherMethod;
  const redeem = (mac: string, code: string, ip?: string) =>
    merchant.purchase({ mac, ...(ip && { ip }), payment: { method: 'voucher', code } });
  // The plugin's close waits for the book's writes under way (a use's confirmation, once the journal holds its
  // session, lands after the sale), so the directory is not removed under a write.
  const close = async (): Promise<void> => {
    await part.close?.();
    await env.manager.close();
  };
  return { ...env, dir, part, merchant, book, method, redeem, close };
}
