/**
 * The rule by which the devices of one shared purchase split its bytes left under the kernel quota (KernelQuota.share,
 * meter/shared-quota.ts): what each device's quota is set to, from the kernel's count, the meter's billings since the
 * quota was installed and what an earlier split left owed. Pure: the keeper reads the counts and applies the changes.
 */
import type { KernelQuotaEntry } from './kernel-quota-nft.ts';

/** A quota as the kernel lists it: its limit and the bytes it counted (listed no more than the limit). */
export interface QuotaCount {
  limitBytes: number;
  usedBytes: number;
}

/** What one split changes: quotas whose limit moves, the count going on, and quotas installed afresh. */
export interface SplitPlan<E extends KernelQuotaEntry> {
  next: E[];
  fresh: Array<{ entry: E; owed: number }>;
}

/** Each device's billings against its kernel count, per MAC; one per KernelQuota. */
export class ShareLedger {
  /**
   * Bytes the meter billed for a client since this run installed its quota (the kernel's count starts there too):
   * 0 at each install, raised by noteBilled, which the meter calls for the devices of shared purchases only (the split
   * is for them alone). What the kernel counted beyond it passed after the meter's reading, and the split charges it
   * against the client's share. Absent (a quota an earlier run left): unknown, nothing charged.
   */
  readonly #billed = new Map<string, number>();
  /**
   * Bytes that passed under a client's earlier count and were not billed when a split gave it a fresh one: the meter
   * bills them later, and they are not the new count's. noteBilled pays them off first; what two splits later is still
   * owed was the estimate's excess (the packet the kernel dropped at the limit), dropped so it never adds up.
   */
  readonly #owed = new Map<string, { bytes: number; splits: number }>();
  /**
   * Of the bytes billed since a client's quota was installed, those that paid off what was owed (#owed). The billings
   * cannot tell the old count's bytes from the new one's, so they pay off the estimate's excess too; a count used up
   * in turn reckons what it passed unbilled from all that was billed since its install, else each stop would charge
   * every earlier stop's excess again and the device's fresh quota would shrink stop after stop to nothing (1,500 B a
   * stop at a dropped 1,500 B packet; a GSO segment is up to 64 KiB). The price: where the owed bytes were real (passed
   * between the meter's reading and the split), the next stop's estimate can fall short by as much, once.
   */
  readonly #paidOff = new Map<string, number>();

  /** A fresh quota in the kernel (a new count): nothing billed against it yet. */
  installed(mac: string): void {
    this.#billed.set(mac, 0);
    this.#owed.delete(mac);
    this.#paidOff.delete(mac);
  }

  /** The client's quota is gone (or its count unknown: an earlier run's). */
  forget(mac: string): void {
    this.#billed.delete(mac);
    this.#owed.delete(mac);
    this.#paidOff.delete(mac);
  }

  clear(): void {
    this.#billed.clear();
    this.#owed.clear();
    this.#paidOff.clear();
  }

  /** The meter billed `bytes` more for this client (a device of a shared purchase), counted against its next share. */
  noteBilled(mac: string, bytes: number): void {
    const billed = this.#billed.get(mac);
    if (billed === undefined || !(bytes > 0)) return;
    const owed = this.#owed.get(mac);
    const paid = owed === undefined ? 0 : Math.min(owed.bytes, bytes);
    if (owed !== undefined) owed.bytes -= paid;
    if (paid > 0) this.#paidOff.set(mac, (this.#paidOff.get(mac) ?? 0) + paid);
    this.#billed.set(mac, billed + bytes - paid);
  }

  /** A fresh count took over `bytes` the old one passed unbilled: the meter's next billings pay them off first. */
  owe(mac: string, bytes: number): void {
    if (bytes > 0) this.#owed.set(mac, { bytes, splits: 0 });
  }

  /**
   * Each device's quota to let `shareBytes` more through from the meter's reading: its limit the kernel's count so
   * far plus the share less what the kernel counted beyond the bytes billed (passed since the reading, so already part
   * of the share); the count goes on, except for a quota used up, installed afresh with its share. A device without
   * an entry or a count is left. Ages what is owed (a split is what tells an estimate's excess from a late billing);
   * the caller applies the plan, then `installed` and `owe` each fresh one.
   */
  split<E extends KernelQuotaEntry & { inherited?: true }>(
    shares: ReadonlyArray<{ mac: string; shareBytes: number }>,
    entryOf: (mac: string) => E | undefined,
    countOf: (mac: string) => QuotaCount | undefined,
  ): SplitPlan<E> {
    const plan: SplitPlan<E> = { next: [], fresh: [] };
    for (const { mac, shareBytes } of shares) {
      const entry = entryOf(mac);
      const q = countOf(mac);
      if (entry === undefined || q === undefined) continue;
      const owed = this.#owed.get(mac);
      if (owed !== undefined && ++owed.splits > 1) this.#owed.delete(mac);
      const billed = this.#billed.get(mac);
      if (q.usedBytes >= q.limitBytes) {
        // Used up: the kernel goes on counting the packets it drops and lists no more than the limit, so a limit
        // raised from the listed count would take the dropped bytes, which never passed, out of the share (each
        // stop a device waited through for its next share cost it what it was sent meanwhile: the lab's devices
        // stopped with bytes left and the session ended short). A fresh count instead; what passed under the old
        // one unbilled is at most its limit less what was billed since its install (the owed it paid off included:
        // that may have been this count's bytes paying for the last estimate's excess).
        const sinceInstall = billed === undefined ? undefined : billed + (this.#paidOff.get(mac) ?? 0);
        const unbilled = sinceInstall === undefined ? 0 : Math.max(0, q.limitBytes - sinceInstall);
        const limitBytes = Math.max(0, Math.floor(shareBytes) - unbilled);
        const { inherited: _carried, ...rest } = entry;
        plan.fresh.push({ entry: { ...rest, limitBytes } as E, owed: unbilled + (this.#owed.get(mac)?.bytes ?? 0) });
        continue;
      }
      const unbilled = billed === undefined ? 0 : Math.max(0, q.usedBytes - billed);
      const limitBytes = q.usedBytes + Math.max(0, Math.floor(shareBytes) - unbilled);
      if (limitBytes !== q.limitBytes) plan.next.push({ ...entry, limitBytes });
    }
    return plan;
  }
}
