/**
 * What a device passed at this router after the meter's last reading of it, read in the close of its gate when a
 * release gives its session up (docs/roaming.md, "The holder closes first"): openNDS deletes a client's counters with
 * its deauth, and the kernel's go with it too, so a byte the ticks had not read by then would never be billed. The
 * close stops the device's traffic (sluice's own stop, where the IPv6 gate runs), then reads its counters in the same
 * turn of the portal's queue, the ones the meter bills from: the kernel's while it meters from them, else the portal's
 * (`json <mac>`); what they show past the meter's last reading is billed here and the session ended, on flash, before
 * the portal's deauth (a holder killed after it finds the bytes in its journal, one killed before it the portal's
 * counters still there for its restarted meter). Under sluice's own gate the close takes the device out of the gate's
 * set and deletes its flows, then reads the kernel's counters, which stay a while after a close (gate/own-valve.ts).
 * The gate holds the device closed from the close to the end.
 */
import { SluiceError } from '../errors.ts';
import type { Log } from '../log.ts';
import { GATE_OPEN_STATES, type PortalClient } from '../portal/index.ts';
import type { CounterMark } from '../meter/index.ts';
import { isLive, type Session, type SessionManager } from '../sessions/index.ts';

/** The kernel's per-client counters (portal/kernel-counting.ts): one client's now. */
export interface KernelCountsReader {
  read(mac: string): Promise<{ down: number; up: number; epoch: number } | null>;
}

export interface TailParts {
  valve: {
    /** The close, `count` run in it once the device's traffic stopped; the gate held closed until the session ends. */
    closeAndCount<T>(
      mac: string,
      count: (client: () => Promise<PortalClient | null>) => Promise<T>,
    ): Promise<{ result: 'closed' | 'not-found'; counted: T }>;
    /** The stop and the hold the close began go (it failed: the session stays here, and so does its traffic). */
    released(mac: string): Promise<void>;
  };
  /** The kernel's counters when the meter reads usage from them (null: it reads the portal's). */
  kernel: () => KernelCountsReader | null;
  /** The meter's last committed reading of the client (its counters' epoch and figures). */
  mark: (mac: string) => CounterMark | undefined;
}

/** Bytes down and up past the meter's last reading of the device here. */
export interface Tail {
  down: number;
  up: number;
}
const NONE: Tail = { down: 0, up: 0 };

/** The counters past `m` (none when they are not the ones `m` read: made again, or lower). */
function past(down: number, up: number, m: CounterMark): Tail {
  if (down < m.down || up < m.up) return NONE;
  return { down: Math.floor(down - m.down), up: Math.floor(up - m.up) };
}

/** The device's counters read in its close: the kernel's (with their epoch) or the portal's. */
interface CloseReading {
  down: number;
  up: number;
  epoch?: number;
}

/** The close of a device's gate with its last reading, `bill` run in it before the deauth (closeWithTail). */
export type CloseWithTail = <T>(mac: string, bill: (tailNow: () => Tail) => Promise<T>) => Promise<T>;

/**
 * The close of `mac`'s gate with its last reading: once the device's traffic stopped and its counters were read,
 * `bill` runs in the close, before the portal's deauth, with what the counters show past the meter's last reading,
 * asked when it is billed (none when it cannot tell: no reading of the client, other counters). Asked then, not as
 * the counters are read: a tick whose reading was under way commits meanwhile, and what it billed is then past the
 * mark, not billed twice. The deauth waits for `bill`: openNDS deletes the counters with it, so what they showed is on
 * flash first, and a holder killed before the deauth still has them at the portal. Resolves with what `bill` did once
 * the portal answered the deauth; throws when it did not (the stop is released when `bill` did not run: the session
 * goes on here).
 */
export function closeWithTail(p: TailParts): CloseWithTail {
  return async (mac, bill) => {
    let done: { v: Awaited<ReturnType<typeof bill>> } | undefined;
    try {
      await p.valve.closeAndCount(mac, async (client) => {
        const counted = await read(p, mac, client);
        done = {
          v: await bill(() => {
            const mark = p.mark(mac);
            if (counted === null || mark === undefined) return NONE;
            if (counted.epoch !== undefined && counted.epoch !== mark.token) return NONE;
            return past(counted.down, counted.up, mark);
          }),
        };
      });
      return done!.v;
    } catch (err) {
      // A bill that ran ended the session: its gate stays stopped until a close the gatekeeper retries succeeds.
      if (done === undefined) await p.valve.released(mac);
      throw err;
    }
  };
}

/** The counters `closeWithTail` bills from: the kernel's while the meter meters from them, else the portal's. */
async function read(
  p: TailParts,
  mac: string,
  client: () => Promise<PortalClient | null>,
): Promise<CloseReading | null> {
  const kernel = p.kernel();
  if (kernel !== null) return kernel.read(mac);
  const c = await client().catch(() => null);
  const open = c !== null && (GATE_OPEN_STATES as readonly string[]).includes(c.state);
  return open ? { down: c.downloadBytes, up: c.uploadBytes } : null;
}

/** What billTail asks of the sessions. */
export type TailSessions = Pick<SessionManager, 'get' | 'applyUsage' | 'reportUsage' | 'writesSettled'>;

/**
 * Closes the device's gate with its last reading (`closeWithTail`): in the close, before the portal's deauth, what it
 * shows past the meter's last reading is billed to the session as a tick would bill it (its `usage` told to the
 * sinks), and the session ended (`end`, durable when it resolves), so the bill is on flash before the portal forgets
 * the counters. Resolves with what `end` gave once the portal answered. A close the portal did not answer is a device
 * not confirmed gone: ERR_VENUE_DEVICE_PRESENT, the release is refused and the fleet asks again. Without
 * `closeWithTail`, just `end` (the portal's gate closes after the end, as it always did).
 */
export async function billTail(
  deps: { closeWithTail?: CloseWithTail | undefined; sessions: TailSessions; log: Log },
  session: Session,
  end: () => Promise<Session | null>,
): Promise<Session | null> {
  const { mac } = session;
  if (deps.closeWithTail === undefined) return end();
  let outcome: { ranOut: boolean; ended: Session | null };
  try {
    outcome = await deps.closeWithTail(mac, async (tailNow) => {
      // From the mark read to the session's end nothing waits, so no tick bills between them.
      if (!billed(deps, session, tailNow())) return { ranOut: false, ended: await end() };
      // The bill ended it (its allotment reached): that end on flash too before the deauth.
      await deps.sessions.writesSettled();
      return { ranOut: true, ended: null };
    });
  } catch (err) {
    throw new SluiceError('ERR_VENUE_DEVICE_PRESENT', `the gate of ${mac} here is not confirmed closed yet`, {
      cause: err,
    });
  }
  if (outcome.ranOut) throw new SluiceError('ERR_SESSION_NOT_FOUND', `the session of ${mac} here ran out at its close`);
  return outcome.ended;
}

/** Bills `tail` to the session as a tick would; true when that ended it (false: still live, or nothing billed). */
function billed(deps: { sessions: TailSessions; log: Log }, session: Session, tail: Tail): boolean {
  const { mac } = session;
  const bytes = tail.down + tail.up;
  if (bytes <= 0) return false;
  deps.sessions.applyUsage([session.id], [bytes], 1);
  const now = deps.sessions.get(session.id) ?? session;
  deps.sessions.reportUsage([
    {
      ...{ mac, sessionId: session.id, metric: now.metric, deltaBytes: bytes },
      ...{ deltaDownloadBytes: tail.down, deltaUploadBytes: tail.up },
      remainingBytes: now.metric === 'seconds' ? Infinity : Math.max(0, Number(now.allotment) - now.used),
      exhausted: !isLive(now) && now.endCause === 'data-limit',
    },
  ]);
  deps.log.info('venue: bytes after the last reading billed at the close', { mac, session: session.id, bytes });
  return !isLive(now);
}
