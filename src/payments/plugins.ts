/**
 * The payment methods built from config, one line each (STYLE.md point 13). The order is the registry's (after the
 * built-in grant), the start's reconcile order and the stop's.
 */
import { batchSettlementPlugin } from './batch-settlement/index.ts';
import { cashuPlugin } from './cashu/index.ts';
import { escrowSessionPlugin } from './escrow-session/index.ts';
import { exactPlugin } from './exact/index.ts';
import { localVoucherPlugin } from './local-voucher/index.ts';
import type { PaymentPlugin, RegisteredPlugin } from './plugin.ts';
import type { X402Scheme } from './plugin-faces.ts';
import { radiusPlugin } from './radius/index.ts';
import { registerPlugins } from './registrations.ts';
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

/** What the list's plugins register (their ubus methods, LAN routes, x402 schemes), in its order. */
export const REGISTERED: readonly RegisteredPlugin[] = registerPlugins(PAYMENT_PLUGINS);

/**
 * The x402 schemes of the list, in its order, whether or not their methods run (the LAN endpoint's /buy and /plans,
 * when it is started without the daemon's list).
 */
export const X402_SCHEMES: readonly X402Scheme[] = REGISTERED.flatMap((r) => r.schemes);

/** The pay-page forms of the list, by key, in its order, whether or not their methods run (GET /'s `methods`). */
export const PAY_FORM_KEYS: readonly string[] = REGISTERED.flatMap((r) => (r.payForm ? [r.payForm.key] : []));
