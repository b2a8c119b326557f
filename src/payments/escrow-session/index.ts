/** Escrow sessions (escrow.enabled): payment method x402-session, its receipts, and credit gating. */
import { EscrowLedger } from '../../escrow/index.ts';
import { openEscrowCredit } from './escrow-credit.ts';
import type { PaymentPlugin } from '../plugin.ts';

export const escrowSessionPlugin: PaymentPlugin = {
  name: 'x402-session',
  switch: 'escrow',
  // Its receipts (POST /receipt).
  lanUse: { name: 'escrow', on: (c) => c.escrow.enabled },
  async open({ config, sessions, gate, stepSizeOf, endsWritten, log }) {
    const ledger = await EscrowLedger.open(config.main.stateDir);
    const escrow = await openEscrowCredit({ config: config.escrow, ledger, sessions, gate, stepSizeOf, endsWritten, log });
    return {
      methods: [escrow.method],
      reconfigure: (next) => escrow.reconfigure(next.escrow),
      // Every escrow session the ledger holds open, against the journal just recovered (ended there → closed).
      reconcile: () => escrow.reconcile(),
      // Holds are not stored: they follow from the ledger and the journal (escrow.credit_steps may have changed).
      recheck: () => escrow.recheckAll(),
      // Closes left by a restart or an outage: once the upstream sinks run, so their escrow-closed messages are queued.
      start: () => escrow.start(),
      usage: (batch) => { for (const u of batch) void escrow.check(u.sessionId); },
      wire: ({ upstream, events }) => {
        escrow.on('escrow-closed', (c) => upstream.escrowClosed(c.session, c.mac, c.figures));
        events.followEscrow(escrow);
      },
      close: async () => escrow.stop(),
      ubus: { escrowOf: (s) => escrow.escrowOf(s), receipt: (args) => escrow.receipt(args) },
    };
  },
};
