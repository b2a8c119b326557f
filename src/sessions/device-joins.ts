/**
 * Several devices per purchase, the session manager's part (devices.ts holds the pure rules): the join codes, and the
 * joins and removals of a live multi-device session, each written to the journal before the registry changes and
 * before anyone hears of it.
 */
import { randomBytes } from 'node:crypto';
import { SluiceError } from '../errors.ts';
import { checkJoin, isShared, joinCodeOf, normalizeJoinCode } from './devices.ts';
import { isLive, normalizeMac, viewSession } from './model.ts';
import type { Session } from './model.ts';
import type { Registry } from './registry.ts';
import type { SessionStore } from './store.ts';
import type { Clock } from './time.ts';

export interface DeviceJoinsContext {
  reg: Registry;
  store: Pick<SessionStore, 'append'>;
  clock: Clock;
  /** The live session `id`, else ERR_SESSION_NOT_FOUND. */
  live(id: string): Session;
  emit(event: 'joined' | 'left', session: Session, mac: string): void;
}

export class DeviceJoins {
  /** The key of this run's join codes (devices.ts): a restart draws a new one, so codes are never stored. */
  private readonly key = randomBytes(32);
  /** Joins being written, by MAC → session id: each holds its place, so two joins cannot both take the last one. */
  private readonly joining = new Map<string, string>();

  constructor(private readonly ctx: DeviceJoinsContext) {}

  /** The code a second device types to join this live multi-device session; null for a single-device or ended one. */
  code(id: string): string | null {
    const s = this.ctx.reg.sessions.get(id);
    return s && isLive(s) && isShared(s) ? joinCodeOf(this.key, s.id) : null;
  }

  /**
   * `mac` joins the live multi-device session whose code is `code`: written before anyone hears of it, then its MAC
   * finds the session (the meter bills its bytes to the one allotment) and `joined` is emitted (the gate opens it).
   * Repeating a join is a no-op. Throws ERR_DEVICE_CODE_INVALID, ERR_DEVICE_BUSY (the device has its own session),
   * ERR_DEVICE_LIMIT (all the purchase's devices in use).
   */
  async join(code: string, mac: string): Promise<Session> {
    const { reg, store, clock } = this.ctx;
    const device = normalizeMac(mac);
    const wanted = normalizeJoinCode(code);
    const session =
      wanted === null ? undefined : [...reg.live()].find((s) => isShared(s) && joinCodeOf(this.key, s.id) === wanted);
    if (!session) throw new SluiceError('ERR_DEVICE_CODE_INVALID', 'no live session takes devices with this code');
    if (this.joining.has(device)) throw new SluiceError('ERR_DEVICE_BUSY', `${device} is joining a session already`);
    const inFlight = [...this.joining.values()].filter((id) => id === session.id).length;
    if (checkJoin(session, device, reg.liveFor(device), inFlight) === 'member')
      return viewSession(session, clock.now());
    this.joining.set(device, session.id);
    try {
      await store.append([{ t: 'join', id: session.id, mac: device, at: clock.now() }]);
    } finally {
      this.joining.delete(device);
    }
    const current = reg.sessions.get(session.id);
    // Ended while the record was written: the record is harmless (a join to an ended session is ignored on replay).
    if (!current || !isLive(current))
      throw new SluiceError('ERR_DEVICE_CODE_INVALID', 'the session ended while the device was joining');
    current.devices = [...(current.devices ?? []), device];
    reg.addDevice(current, device);
    const view = viewSession(current, clock.now());
    this.ctx.emit('joined', view, device);
    return view;
  }

  /** Removes a joined device (not the buyer's: ending the session does that) from a live session; `left` follows. */
  async remove(id: string, mac: string): Promise<Session> {
    const { reg, store, clock } = this.ctx;
    const device = normalizeMac(mac);
    const session = this.ctx.live(id);
    if (!(session.devices ?? []).includes(device)) {
      throw new SluiceError(
        'ERR_DEVICE_NOT_MEMBER',
        device === session.mac
          ? `${device} bought the session: end the session (terminate) to close every device`
          : `${device} is not a joined device of this session`,
      );
    }
    await store.append([{ t: 'leave', id, mac: device, at: clock.now() }]);
    const current = reg.sessions.get(id);
    if (current && isLive(current) && (current.devices ?? []).includes(device)) {
      current.devices = current.devices!.filter((m) => m !== device);
      reg.removeDevice(current, device);
      const view = viewSession(current, clock.now());
      this.ctx.emit('left', view, device);
      return view;
    }
    return viewSession(current ?? session, clock.now());
  }
}
