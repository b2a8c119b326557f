/** Escrow sessions (escrow.enabled): payment method x402-session, its receipts, and credit gating. */
import { type PaymentPlugin } from '../plugin.ts';
import { invalidArgument } from '../plugin-faces.ts';
import { SluiceError } from '../../errors.ts';
import { lazyPart } from '../../lazy.ts';

/** Its code, in files of their own, read when the method opens (docs/performance.md, "Idle memory"). */
const escrowCode = lazyPart('the x402-session method', () =>
  Promise.all([import('../../escrow/index.ts'), import('./escrow-credit.ts')]),
);

/** A buyer-signed escrow usage receipt, applied (ubus `receipt`, POST /receipt). */
type ReceiptFace = (
  args: Record<string, unknown>,
) => Promise<{ sessionId: string; cumulativeUnits: bigint; advanced: boolean }>;

declare module '../plugin-faces.ts' {
  interface UbusFace {
    receipt?: ReceiptFace;
  }
  interface LanFace {
    receipt?: ReceiptFace;
  }
}

const MAX_RECEIPT_BYTES = 2048;

export const escrowSessionPlugin: PaymentPlugin = {
  name: 'x402-session',
  damagedState: 'ERR_ESCROW_LEDGER',
  switch: 'escrow',
  register(add) {
    // Its receipts (POST /receipt).
    add.lanUse({ name: 'escrow', on: (c) => c.escrow.enabled });
    // A buyer-signed usage receipt: kept when higher than the session's last (docs/ubus-api.md `receipt`).
    add.ubusMethod('receipt', {
      args: {
        mac: { kind: 'mac' },
        session_id: { kind: 'string', maxLength: 66 },
        cumulative_units: { kind: 'count', required: true },
        nonce: { kind: 'count' },
        signature: { kind: 'string', maxLength: 132, required: true },
      },
      adminOnly: false,
      async handler(a, face) {
        // Checked by api/args.ts against the policy above: strings as strings, counts as bigints.
        const {
          mac,
          session_id: sessionId,
          cumulative_units: units,
          nonce,
          signature,
        } = a as {
          mac?: string;
          session_id?: string;
          cumulative_units: bigint;
          nonce?: bigint;
          signature: string;
        };
        if (mac === undefined && sessionId === undefined) throw invalidArgument('mac', 'mac or session_id is required');
        if (!face?.receipt) throw new SluiceError('ERR_RECEIPT_SESSION', 'escrow sessions are not enabled');
        const r = await face.receipt({
          ...(mac !== undefined && { mac }),
          ...(sessionId !== undefined && { session_id: sessionId }),
          cumulative_units: String(units),
          ...(nonce !== undefined && { nonce: String(nonce) }),
          signature,
        });
        return { session_id: r.sessionId, cumulative_units: r.cumulativeUnits.toString(), advanced: r.advanced };
      },
    });
    add.lanRoute({
      // A buyer-signed usage receipt (JSON {cumulative_units, nonce?, signature}, ≤ 2 KiB) for the caller's escrow
      // session: ubus `receipt` with the MAC of the source IP.
      method: 'POST',
      path: '/receipt',
      paying: true,
      async handler(req, face) {
        const body = await req.json(MAX_RECEIPT_BYTES, 'ERR_RECEIPT_INVALID', '{cumulative_units, nonce?, signature}');
        const mac = await req.mac();
        if (!face?.receipt) throw new SluiceError('ERR_RECEIPT_SESSION', 'escrow sessions are not enabled');
        const { session_id, cumulative_units, nonce, signature } = body;
        const r = await face.receipt({
          mac,
          ...(session_id !== undefined && { session_id }),
          cumulative_units,
          ...(nonce !== undefined && { nonce }),
          signature,
        });
        return {
          status: 200,
          body: { session_id: r.sessionId, cumulative_units: r.cumulativeUnits, advanced: r.advanced },
        };
      },
    });
  },
  async open({ config, sessions, gate, stepSizeOf, endsWritten, log, announce, onSession, background, atStart }) {
    const [{ EscrowLedger }, { openEscrowCredit }] = await escrowCode();
    const ledger = await EscrowLedger.open(config.main.stateDir, { atStart });
    const escrow = await openEscrowCredit({
      config: config.escrow,
      ledger,
      sessions,
      gate,
      stepSizeOf,
      endsWritten,
      log,
    });
    // Holds, releases and closes on chain: ubus events of the method's own kinds; a close also goes upstream (durable).
    escrow.on('awaiting-receipt', (figures) => announce.events.method('awaiting-receipt', figures));
    escrow.on('receipt', (figures) => announce.events.method('receipt', figures));
    escrow.on('escrow-closed', ({ session, mac, escrow: view, figures }) => {
      announce.upstream.escrowClosed(session, mac, figures);
      announce.events.method('escrow-closed', { ...(session && { session: session.id }), mac, escrow: view });
    });
    // Each tick's billed sessions: one whose metered steps outran its receipts is held (escrow-credit.ts).
    onSession('usage', (batch) => {
      for (const u of batch) void escrow.check(u.sessionId);
    });
    // The closes and consumes on chain: what a restart or an outage left, once the upstream sinks run (so their
    // escrow-closed messages are queued), then as sessions end; the stop ends the exchanges in flight.
    background({ start: () => escrow.start(), stop: () => escrow.stop() });
    return {
      methods: [escrow.method],
      reconfigure: (next) => escrow.reconfigure(next.escrow),
      // Every escrow session the ledger holds open, against the journal just recovered (ended there → closed).
      reconcile: () => escrow.reconcile(),
      // Holds are not stored: they follow from the ledger and the journal (escrow.credit_steps may have changed).
      recheck: () => escrow.recheckAll(),
      ubus: {
        receipt: (args) => escrow.receipt(args),
        sessionFields: (s) => {
          const view = escrow.escrowOf(s);
          return view && { escrow: view };
        },
      },
      lan: { receipt: (args) => escrow.receipt(args) },
    };
  },
};
