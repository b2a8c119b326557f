/**
 * Claims a purchase holds while its payment is being collected: its replay keys (idempotency key, payment reference)
 * and, if it will start a new session, a slot under `limits.max_sessions`. A second purchase with a held key is
 * refused before its payment method is asked for money (ERR_PAYMENT_IN_PROGRESS), and concurrent purchases cannot
 * together overrun the session limit and be refused only after they paid. Memory only: a hold ends with its purchase.
 */
import { SluiceError } from '../errors.ts';

export class Hold {
  private released = false;

  constructor(
    private readonly owner: Holds,
    readonly mac: string,
    readonly keys: Set<string>,
    readonly reservesSlot: boolean,
  ) {}

  /** Adds a key learned later (the reference a method's precheck announces). Throws if another purchase holds it. */
  claim(key: string): void {
    if (this.released) throw new SluiceError('ERR_SESSIONS_STATE', 'claim on a released hold');
    this.owner.claim(this, key);
  }

  owns(key: string): boolean {
    return !this.released && this.keys.has(key);
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.owner.drop(this);
  }
}

export class Holds {
  private readonly keys = new Map<string, Hold>();
  private readonly slots = new Map<string, number>();

  /** Throws ERR_PAYMENT_IN_PROGRESS if any key is held by another purchase; otherwise holds them all. */
  take(mac: string, keys: readonly string[], reservesSlot: boolean): Hold {
    for (const k of keys) this.assertFree(k, null);
    const hold = new Hold(this, mac, new Set(keys), reservesSlot);
    for (const k of keys) this.keys.set(k, hold);
    if (reservesSlot) this.slots.set(mac, (this.slots.get(mac) ?? 0) + 1);
    return hold;
  }

  claim(hold: Hold, key: string): void {
    this.assertFree(key, hold);
    hold.keys.add(key);
    this.keys.set(key, hold);
  }

  drop(hold: Hold): void {
    for (const k of hold.keys) if (this.keys.get(k) === hold) this.keys.delete(k);
    if (hold.reservesSlot) {
      const n = (this.slots.get(hold.mac) ?? 1) - 1;
      if (n <= 0) this.slots.delete(hold.mac);
      else this.slots.set(hold.mac, n);
    }
  }

  /** The holder of a key other than `self`, if any. */
  heldByOther(key: string, self: Hold | null | undefined): boolean {
    const h = this.keys.get(key);
    return h !== undefined && h !== self;
  }

  /**
   * MACs with a slot reserved by an in-flight purchase, other than `except`, for which `hasLive` says no session exists
   * yet.
   */
  reservedSlots(except: string | null, hasLive: (mac: string) => boolean): number {
    let n = 0;
    for (const mac of this.slots.keys()) if (mac !== except && !hasLive(mac)) n++;
    return n;
  }

  get size(): number {
    return this.keys.size;
  }

  private assertFree(key: string, self: Hold | null): void {
    if (this.heldByOther(key, self)) throw inProgress(key);
  }
}

export function inProgress(key: string): SluiceError {
  return new SluiceError(
    'ERR_PAYMENT_IN_PROGRESS',
    `a purchase with the same ${key.startsWith('idem:') ? 'idempotency key' : 'payment reference'} is in ` +
      'progress; retry when it has finished',
    { details: { key } },
  );
}
