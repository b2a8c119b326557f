/**
 * What the demo's simulated portal does next, from the moment in the run and who is on it: pure, so a test can walk a
 * whole run without waiting for one. Purchases, top-ups and the one admin terminate are spread over the whole run, to
 * its last second: a view where nothing is bought any more looks frozen.
 */
import type { BlobmsgTable } from '../ubus/index.ts';

export type DemoAction =
  | { kind: 'buy'; mac: string; args: BlobmsgTable }
  | { kind: 'topup'; mac: string; args: BlobmsgTable }
  | { kind: 'terminate'; mac: string };

export interface DemoMoment {
  elapsedMs: number;
  totalMs: number;
  /** Paying clients (their sessions ACTIVE). */
  active: ReadonlyArray<{ mac: string; metric: 'bytes' | 'seconds' }>;
  /** Clients on the portal's splash page, without a session: who can buy. */
  candidates: readonly string[];
  /** Whether the run's one admin terminate was sent. */
  terminated: boolean;
}

const pick = <T>(items: readonly T[], random: () => number): T | undefined =>
  items[Math.floor(random() * items.length)];

/**
 * ms between two actions: about 60% of the clients buy once over the run (at least 8 purchases), never faster than
 * 20/s.
 */
export function actionIntervalMs(clients: number, seconds: number): number {
  const purchases = Math.max(8, Math.min(clients, Math.round(clients * 0.6)));
  return Math.max(50, (seconds * 1000) / purchases);
}

export function nextAction(m: DemoMoment, random: () => number): DemoAction | undefined {
  if (m.elapsedMs >= m.totalMs) return undefined;
  if (m.active.length > 0 && random() < 0.15) {
    const s = pick(m.active, random)!;
    const steps = 1 + Math.floor(random() * 3);
    return { kind: 'topup', mac: s.mac, args: { plan: s.metric === 'bytes' ? 'data' : 'time', steps } };
  }
  if (!m.terminated && m.elapsedMs > m.totalMs * 0.4 && m.active.length > 0)
    return { kind: 'terminate', mac: pick(m.active, random)!.mac };
  const busy = new Set(m.active.map((s) => s.mac));
  const mac = pick(
    m.candidates.filter((c) => !busy.has(c)),
    random,
  );
  if (mac === undefined) return undefined;
  const args =
    random() < 0.65
      ? { plan: 'data', steps: 1 + Math.floor(random() * 8) }
      : { plan: 'time', steps: 2 + Math.floor(random() * 8) };
  return { kind: 'buy', mac, args };
}
