/**
 * The ubus codec warmed with the daemon's own shapes: a purchase's call, its reply (a session's view) and its `started`
 * event, built by the functions that build the real ones, for a session that exists nowhere (ubus/codec/warm-up.ts
 * says why). Nothing is sold, written, opened or sent.
 */
import { toSluiceError } from '../errors.ts';
import type { Log } from '../log.ts';
import { onOptimizerRelease } from '../optimizer.ts';
import type { Session } from '../sessions/index.ts';
import { WARM_UP_ROUNDS, warmUpCodec, type WarmUpSample } from '../ubus/index.ts';
import { SESSION_EVENT, sessionEvent } from './events.ts';
import { sessionView } from './view.ts';

/** A data session as a purchase installs it, on a MAC of the locally administered range no device is given. */
function sampleSession(now: number): Session {
  return {
    id: '0000000000000000',
    mac: '02:00:00:00:00:00',
    ip: '192.0.2.1',
    user: null,
    plan: null,
    metric: 'bytes',
    allotment: 1_073_741_824n,
    used: 0,
    bytes: 0,
    createdAt: now,
    startedAt: now,
    expiresAt: null,
    endedAt: null,
    state: 'ACTIVE',
    endCause: null,
    payments: [{ method: 'admin', reference: 'warm-up', amount: 0n, asset: 'admin', at: now }],
    rates: { downBps: null, upBps: null },
  };
}

export function warmUpSample(now: number): WarmUpSample {
  const session = sampleSession(now);
  return {
    method: 'grant',
    args: { mac: session.mac, bytes: 1_073_741_824, ubus_rpc_session: '0'.repeat(32) },
    reply: { session: sessionView(session, now), topped_up: false, gate: 'opened' },
    event: { id: SESSION_EVENT, data: sessionEvent('started', { session: sessionView(session, now) }) },
  };
}

/** Rounds run in one turn of the event loop: a call that arrives meanwhile waits for one chunk, not the whole. */
const CHUNK = 10;

/**
 * Runs the warm-up, a chunk a turn: the bytes it encoded, and the main thread's CPU it took in ms (a router pays it
 * once).
 */
export async function warmUpUbus(now = Date.now()): Promise<{ bytes: number; cpuMs: number }> {
  const sample = warmUpSample(now);
  let bytes = 0;
  let micros = 0;
  for (let done = 0; done < WARM_UP_ROUNDS; done += CHUNK) {
    const before = process.cpuUsage();
    bytes += warmUpCodec(sample, Math.min(CHUNK, WARM_UP_ROUNDS - done));
    const spent = process.cpuUsage(before);
    micros += spent.user + spent.system;
    await new Promise((resolve) => setImmediate(resolve));
  }
  return { bytes, cpuMs: Math.round(micros / 100) / 10 };
}

/**
 * The codec compiled when the daemon first has work (the held compilers let go: optimizer.ts), not by the first burst
 * of purchases; logged with what it cost.
 */
export function warmUpOnRelease(log: Log): void {
  onOptimizerRelease(() => {
    // Only a speed-up: whatever goes wrong in it is logged, never a rejection the process would die of.
    warmUpUbus().then(
      ({ cpuMs }) => log.info('ubus codec warmed up', { cpu_ms: cpuMs }),
      (err: unknown) => log.warn('ubus codec warm-up failed', { reason: toSluiceError(err).message }),
    );
  });
}
