/**
 * The channels a `batch-settlement` money step is working on (a purchase, the settler's claim or refund, the watch):
 * the spec serializes per channel, so one step at a time holds a channel, and a purchase waits a little for one.
 */

import type { PurchaseHold } from '../x402-purchase.ts';

/** How long a purchase waits for a money step on its channel (a claim or refund pass, another purchase) to end. */
export const CHANNEL_WAIT_MS = 15_000;

export class ChannelLocks implements PurchaseHold {
  /** Channels a step is working on (lowercase ids). */
  private readonly busy = new Set<string>();
  /** Purchases waiting for a channel to be let go (free): all are woken at any unlock and look again. */
  private readonly waiting: Array<() => void> = [];

  /** Takes the channel: false when a step holds it. */
  lock(channelId: string): boolean {
    const id = channelId.toLowerCase();
    if (this.busy.has(id)) return false;
    this.busy.add(id);
    return true;
  }

  unlock(channelId: string): void {
    const id = channelId.toLowerCase();
    this.busy.delete(id);
    for (const wake of this.waiting.splice(0)) wake();
  }

  /**
   * Waits (at most CHANNEL_WAIT_MS) while a money step holds the channel: the settler's claim or refund pass after a
   * session's end, or another purchase on it. A customer buying again right after a session ended would otherwise be
   * refused busy, and told a session is still running, for the few seconds the refund takes on chain. False: still
   * held at the end of the wait.
   */
  async free(id: string): Promise<boolean> {
    const until = Date.now() + CHANNEL_WAIT_MS;
    while (this.busy.has(id)) {
      const left = until - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiting.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return true;
  }

  /** A purchase's hold on the channel (x402-purchase.ts): it waits for the channel to be free, then takes it. */
  async take(channelId: string): Promise<boolean> {
    return (await this.free(channelId.toLowerCase())) && this.lock(channelId);
  }

  release(channelId: string): void {
    this.unlock(channelId);
  }

  has(channelId: string): boolean {
    return this.busy.has(channelId.toLowerCase());
  }
}
