/**
 * The room left under `max_balance` (docs/tollgate.md "Custody"): what the store holds and will bring (store.ts
 * exposure) plus the sat of payments let in whose intent is not on flash yet. A token (cashu.ts) and an invoice
 * (lightning.ts) are let in by the one rule: an open intent counts while it holds room (not stranded by a silent mint;
 * an invoice only while it holds a place, invoice-slots.ts).
 */
import { SluiceError } from '../../errors.ts';
import type { IntentLooks } from './intent-looks.ts';
import { isLightning, type InvoiceSlots } from './invoice-slots.ts';
import type { SwapIntent } from './ledger-state.ts';
import type { CashuStore } from './store.ts';

export interface BalanceRoomOptions {
  store: CashuStore;
  looks: IntentLooks;
  slots: InvoiceSlots;
  maxBalance(): bigint;
  now(): number;
}

export class BalanceRoom {
  /** Sat let in by reserve whose intent is not on flash yet (the store does not count them). */
  private admitting = 0n;

  constructor(private readonly o: BalanceRoomOptions) {}

  /** Refuses `sat` more when it would pass max_balance. */
  ensure(sat: bigint): void {
    const max = this.o.maxBalance();
    if (this.o.store.exposure((i) => this.holds(i)) + this.admitting + sat > max) {
      throw new SluiceError(
        'ERR_CASHU_BALANCE_FULL',
        `this router holds as much ecash as it may (${max} sat); pay again after its payout`,
      );
    }
  }

  /** Whether an open intent counts against max_balance: not stranded, and an invoice only while it holds a place. */
  holds(intent: SwapIntent): boolean {
    if (isLightning(intent.ref)) return this.o.slots.holds(intent, this.o.now());
    return !this.o.looks.isStranded(intent.ref);
  }

  /**
   * ensure, and `sat` counted against max_balance until the release (call it once the payment's intent is on flash,
   * or it failed): payments checked at once were each let in by a store that held none of them yet.
   */
  reserve(sat: bigint): () => void {
    this.ensure(sat);
    this.admitting += sat;
    let held = true;
    return () => {
      if (held) this.admitting -= sat;
      held = false;
    };
  }
}
