/**
 * Moving a live session to another MAC, the session manager's part: the `move` record is written before the registry
 * changes and before anyone hears of it, and the moves being written are held so that neither a second move nor a
 * purchase for the target MAC races one.
 */
import { SluiceError } from '../errors.ts';
import { copySession, normalizeMac, viewSession } from './model.ts';
import type { Session } from './model.ts';
import type { Registry } from './registry.ts';
import type { SessionStore } from './store.ts';
import type { Clock } from './time.ts';

export interface SessionMovesContext {
  reg: Registry;
  store: Pick<SessionStore, 'append'>;
  clock: Clock;
  /** The live session `id`, else ERR_SESSION_NOT_FOUND (`meanwhile`: it ended while a record was written). */
  live(id: string, meanwhile?: 'meanwhile'): Session;
  emit(session: Session, from: string): void;
}

export class SessionMoves {
  /** Session ids and target MACs of moves being written: a purchase for such a MAC waits for the move to land. */
  private readonly moving = new Set<string>();

  constructor(private readonly ctx: SessionMovesContext) {}

  /** Whether a move of session `key`, or to MAC `key`, is being written. */
  isMoving(key: string): boolean {
    return this.moving.has(key);
  }

  /**
   * Moves a live session to another MAC (a returning customer's phone with a new private address, or an admin's
   * `move`): same id, usage, allotment and deadline. The `move` record is on flash before anyone hears `moved` (the
   * gate then closes the old MAC and opens the new one), so a crash leaves the session on exactly one MAC and the
   * start-up reconcile closes the other. Throws ERR_SESSION_NOT_FOUND (not live), ERR_SESSION_MOVE_TARGET (the MAC has
   * a live session of its own), ERR_SESSION_MOVING (a move of this session or to this MAC is being written).
   */
  async move(id: string, toMac: string): Promise<Session> {
    const { reg, store, clock } = this.ctx;
    const mac = normalizeMac(toMac);
    const session = this.ctx.live(id);
    if (session.mac === mac) return viewSession(session, clock.now());
    if (reg.liveFor(mac))
      throw new SluiceError('ERR_SESSION_MOVE_TARGET', `${mac} has a live session of its own`, { details: { mac } });
    if (this.moving.has(id) || this.moving.has(mac))
      throw new SluiceError('ERR_SESSION_MOVING', `a move of session ${id} or to ${mac} is being written`);
    this.moving.add(id);
    this.moving.add(mac);
    try {
      const now = clock.now();
      await store.append([{ t: 'move', id, mac, at: now }]);
      // Ended while the move was written: the end record follows the move, so a restart agrees it is over.
      const current = this.ctx.live(id, 'meanwhile');
      const from = current.mac;
      const moved = copySession(current);
      moved.mac = mac;
      moved.ip = null;
      reg.replace(moved);
      const view = viewSession(moved, clock.now());
      this.ctx.emit(view, from);
      return view;
    } finally {
      this.moving.delete(id);
      this.moving.delete(mac);
    }
  }
}
