/** x402 batch-settlement (batch_settlement.enabled): a session is charged what it used from the customer's channel. */
import { SluiceError } from '../../errors.ts';
import { lazyPart } from '../../lazy.ts';
import { type PaymentPlugin } from '../plugin.ts';
import { invalidArgument, type X402Scheme } from '../plugin-faces.ts';
import { BATCH_LAN_ROUTES, batchPayersOf, correctiveExtra } from './lan-routes.ts';
import type { BatchSettlementMethod } from './x402-batch.ts';

/** Its code, in a file of its own, read when the method opens (docs/performance.md, "Idle memory"). */
const batchCode = lazyPart('the batch-settlement method', () => import('./x402-batch-ends.ts'));

/** The channels' state and refunds (ubus `batch_channel`, `batch_refund`; GET /batch/channel, /batch/refund). */
declare module '../plugin-faces.ts' {
  interface UbusFace {
    batch?: BatchSettlementMethod;
  }
  interface LanFace {
    batch?: BatchSettlementMethod;
  }
}

const SCHEME: X402Scheme = {
  scheme: 'batch-settlement',
  method: 'batch-settlement',
  planKey: 'batch_settlement',
  takesUnnamed: true,
  reasonAsError: true,
  corrective: correctiveExtra,
  sells: true,
};

const notEnabled = (): SluiceError =>
  new SluiceError('ERR_UNKNOWN_PAYMENT_METHOD', 'batch-settlement is not enabled on this router');

export const batchSettlementPlugin: PaymentPlugin = {
  name: 'batch-settlement',
  damagedState: 'ERR_BATCH_STORE',
  switch: 'batchSettlement',
  register(add) {
    // Its part of the pay page (docs/batch-settlement.md): the signing bundle and the page logic.
    add.pageScript('batch.js');
    add.pageScript('batch-page.js');
    add.lanUse({ name: 'batch_settlement', on: (c) => c.batchSettlement.enabled });
    add.payersOf(batchPayersOf);
    add.x402Scheme(SCHEME);
    // GET /batch/channel, GET|POST /batch/refund (lan-routes.ts).
    for (const route of BATCH_LAN_ROUTES) add.lanRoute(route);
    // A channel's state (docs/ubus-api.md `batch_channel`).
    add.ubusMethod('batch_channel', {
      args: { channel: { kind: 'string', maxLength: 66, required: true } },
      adminOnly: false,
      handler(a, face) {
        if (!face?.batch) throw notEnabled();
        return { channel: face.batch.channel(a.channel) };
      },
    });
    // The customer's refund request (`batch_refund`): the channel, and the settle response once done.
    add.ubusMethod('batch_refund', {
      // `payload`: the x402 refund payload as a table, or `signature`: the same as the PAYMENT-SIGNATURE header (base64
      // JSON).
      args: { payload: { kind: 'table' }, signature: { kind: 'string', maxLength: 12_000 } },
      adminOnly: false,
      async handler(a, face) {
        if (!face?.batch) throw notEnabled();
        if (a.payload === undefined && a.signature === undefined)
          throw invalidArgument('payload', 'payload or signature is required');
        const out = await face.batch.requestRefund(a.payload ?? a.signature);
        return {
          channel: out.channel,
          refunded: out.settlement !== null,
          ...(out.settlement && { settlement: out.settlement }),
        };
      },
    });
  },
  async open({ config, sessions, endsWritten, log, background, atStart }) {
    const { openBatchSettlement } = await batchCode();
    const batch = await openBatchSettlement({
      config: config.batchSettlement,
      stateDir: config.main.stateDir,
      sessions,
      endsWritten,
      log,
      atStart,
    });
    // The claim/refund passes and the withdrawal watch, once the reconcile has charged what ended while down.
    background(batch.settler.background);
    background(batch.watch.background);
    return {
      methods: [batch.method],
      reconfigure: (next) => batch.method.reconfigure(next.batchSettlement),
      // Open charges against the journal (ended while down → charged), then the claim/refund pass.
      reconcile: () => batch.ends.reconcile(),
      // Ends the facilitator exchanges in flight (its passes stopped before): a peer that holds one must not hold the
      // stop.
      close: async () => batch.method.close(),
      ubus: { batch: batch.method },
      lan: { batch: batch.method },
      x402: {
        ...SCHEME,
        offered: () => true,
        // A plan with no asset has no token to deposit: not offered (as `exact` does not offer it).
        offer: (quote) => (quote.asset === '' ? null : batch.method.requirements(quote.asset, quote.price)),
        settlementOf: (reference) => batch.method.settlementOf(reference),
      },
    };
  },
};
