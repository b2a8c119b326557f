/**
 * Which accepted mints answer, for the advertisement: a mint that is down is left out of the 10021 (a client that
 * paid on it would be refused), and the 10021 itself is always served, never replaced by a notice (TollGate's degraded
 * router does that, and the Android app then concludes "not a TollGate"). Each mint's NUT-02 `GET /v1/keysets` is
 * asked every PROBE_INTERVAL_MS, bounded in time and size; until a mint's first answer it counts as up, so a router
 * that just started advertises what it is configured to take. What is payable is the payment method's to decide at
 * the purchase; this only keeps the offer honest.
 */
import { boundedFetch } from '../../../http-client.ts';
import { backgroundTimers, type Timers } from '../../../time.ts';
import type { BackgroundPass } from '../../plugin.ts';
import { ScheduledPass } from '../../scheduled-pass.ts';

export const PROBE_INTERVAL_MS = 30_000;
const PROBE_TIMEOUT_MS = 3000;
const PROBE_MAX_BYTES = 64 * 1024;

export class MintHealth {
  /** Mint → whether its last probe answered with keysets; absent: not probed yet (counted up). */
  readonly #up = new Map<string, boolean>();
  /** The probes, every PROBE_INTERVAL_MS (scheduled-pass.ts). */
  readonly #probes: ScheduledPass<void>;

  constructor(
    private readonly mints: () => readonly string[],
    timers: Timers = backgroundTimers,
  ) {
    this.#probes = new ScheduledPass({
      run: () => this.probeAll(),
      next: () => PROBE_INTERVAL_MS,
      retry: { minMs: PROBE_INTERVAL_MS, maxMs: PROBE_INTERVAL_MS },
      failed: () => undefined,
      timers,
    });
  }

  /**
   * The probes as the plugin host drives them: every PROBE_INTERVAL_MS once the daemon runs, stopped when the plugin
   * closes (the probe in flight, bounded to PROBE_TIMEOUT_MS a mint, awaited).
   */
  readonly background: BackgroundPass = {
    start: () => this.#probes.start(),
    stop: () => this.#probes.stop(),
  };

  /** The mints of `mints()` not known to be down, in the config's order. */
  up(): string[] {
    return this.mints().filter((m) => this.#up.get(m) !== false);
  }

  /** A probe now, or the one in flight (the door just opened: its advertisement as soon as the mints answer). */
  probeNow(): Promise<void> {
    return this.#probes.run();
  }

  private async probeAll(): Promise<void> {
    await Promise.all(this.mints().map(async (mint) => this.#up.set(mint, await this.probe(mint))));
  }

  private async probe(mint: string): Promise<boolean> {
    const answer = await boundedFetch(`${mint}/v1/keysets`, {
      method: 'GET',
      timeoutMs: PROBE_TIMEOUT_MS,
      maxBytes: PROBE_MAX_BYTES,
      signal: this.#probes.signal,
    });
    if (answer.kind !== 'answer' || answer.status !== 200) return false;
    try {
      const body = JSON.parse(answer.body.toString('utf8')) as { keysets?: unknown };
      return Array.isArray(body.keysets) && body.keysets.length > 0;
    } catch {
      return false;
    }
  }
}
