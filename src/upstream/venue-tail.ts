/**
 * What a device passed at this router after the meter's last reading of it, read in the close of its gate when a
 * release gives its session up (docs/roaming.md, "The holder closes first"): openNDS deletes a client's counters with
 * its deauth, and the kernel's go with it too, so a byte the ticks had not read by then would never be billed. The
 * close stops the device's traffic (sluice's own stop, where the IPv6 gate runs), then reads its counters in the same
 * turn of the portal's queue, the ones the meter bills from: the kernel's while it meters from them, else the portal's
 * (`json <mac>`); what they show past the meter's last reading is billed here before the session ends. Under sluice's
 * own gate the close takes the device out of the gate's set and deletes its flows, then reads the kernel's counters,
 * which stay a while after a close (gate/own-valve.ts). The gate holds the device closed from the close to the end.
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

/**
 * The close of `mac`'s gate with its last reading: resolves, once the portal answered the deauth, with what the
 * counters show past the meter's last reading, asked when it is billed (none when it cannot tell: no reading of the
 * client, other counters). Asked then, not in the close: a tick whose reading was under way commits meanwhile, and
 * what it billed is then past the mark, not billed twice. Throws when the portal did not answer (the stop is released:
 * the session goes on here).
 */
export function closeWithTail(p: TailParts): (mac: string) => Promise<() => Tail> {
  return async (mac) => {
    try {
      const { counted } = await p.valve.closeAndCount(mac, async (client): Promise<CloseReading | null> => {
        const kernel = p.kernel();
        if (kernel !== null) return kernel.read(mac);
        const c = await client().catch(() => null);
        const open = c !== null && (GATE_OPEN_STATES as readonly string[]).includes(c.state);
        return open ? { down: c.downloadBytes, up: c.uploadBytes } : null;
      });
      return () => {
        const mark = p.mark(mac);
        if (counted === null || mark === undefined) return NONE;
        if (counted.epoch !== undefined && counted.epoch !== mark.token) return NONE;
        return past(counted.down, counted.up, mark);
      };
    } catch (err) {
      await p.valve.released(mac);
      throw err;
    }
  };
}

/** What billTail asks of the sessions. */
export type TailSessions = Pick<SessionManager, 'get' | 'applyUsage' | 'reportUsage'>;

/**
 * Closes the device's gate with its last reading (`closeWithTail`) and bills what it shows past the meter's last
 * reading to the session, as a tick would (its `usage` told to the sinks). A close the portal did not answer is a
 * device not confirmed gone: ERR_VENUE_DEVICE_PRESENT, the release is refused and the fleet asks again. Nothing
 * without `closeWithTail` (the portal's gate closes after the end, as it always did).
 */
export async function billTail(
  deps: { closeWithTail?: ((mac: string) => Promise<() => Tail>) | undefined; sessions: TailSessions; log: Log },
  session: Session,
): Promise<void> {
  const { mac } = session;
  if (deps.closeWithTail === undefined) return;
  let tailNow: () => Tail;
  try {
    tailNow = await deps.closeWithTail(mac);
  } catch (err) {
    throw new SluiceError('ERR_VENUE_DEVICE_PRESENT', `the gate of ${mac} here is not confirmed closed yet`, {
      cause: err,
    });
  }
  // From here to the session's end nothing waits, so no tick bills between the mark read and this bill.
  const tail = tailNow();
  const bytes = tail.down + tail.up;
  if (bytes <= 0) return;
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
  if (!isLive(now)) throw new SluiceError('ERR_SESSION_NOT_FOUND', `the session of ${mac} here ran out at its close`);
}
