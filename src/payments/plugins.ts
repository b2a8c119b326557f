/**
 * The payment methods built from config, one line each (STYLE.md point 13). The order is the registry's (after the
 * built-in grant), the start's reconcile order and the stop's.
 */
import { batchSettlementPlugin } from './batch-settlement/index.ts';
import { cashuPlugin } from './cashu/index.ts';
import { escrowSessionPlugin } from './escrow-session/index.ts';
import { exactPlugin } from './exact/index.ts';
import { localVoucherPlugin } from './local-voucher/index.ts';
import type { PaymentPlugin, X402Scheme } from './plugin.ts';
import { radiusPlugin } from './radius/index.ts';
import { trialPlugin } from './trial/index.ts';
import { uptoPlugin } from './upto/index.ts';

export const PAYMENT_PLUGINS: readonly PaymentPlugin[] = [
  radiusPlugin,
  exactPlugin,
  escrowSessionPlugin,
  batchSettlementPlugin,
  uptoPlugin,
  trialPlugin,
  localVoucherPlugin,
  cashuPlugin,
];

/**
 * The x402 schemes of the list, in its order, whether or not their methods run (the LAN endpoint's /buy and /plans).
 */
export const X402_SCHEMES: readonly X402Scheme[] = PAYMENT_PLUGINS.flatMap((p) => (p.x402 ? [p.x402] : []));

/** The pay-page forms of the list, by key, in its order, whether or not their methods run (GET /'s `methods`). */
export const PAY_FORM_KEYS: readonly string[] = PAYMENT_PLUGINS.flatMap((p) => (p.payForm ? [p.payForm.key] : []));
