/**
 * The named views other folders hold of the SessionManager, one per kind of use: reading sessions, hearing its
 * events, per-tick figures, billing, changing a live session, selling. A caller is typed by what it does with the
 * manager (and a test can hand it a small fake); each view is a slice of the class, so it cannot drift from it.
 */
import type { SessionManager } from './manager.ts';

/** Sessions as copies, by id, by MAC or by filter: live ones and ended ones still retained. */
export type SessionReadView = Pick<SessionManager, 'get' | 'byMac' | 'list'>;

/** The sales book (sales-book.ts): every payment sold within its window, for ubus `sales`. */
export type SessionSalesView = Pick<SessionManager, 'salesBook'>;

/** What the manager tells (SessionEvents): a start, a top-up, an end, a warning. */
export type SessionEventsView = Pick<SessionManager, 'on'>;

/** One session's figures without copying it, for what runs per billed session per tick (events, upstream reports). */
export type SessionFiguresView = Pick<SessionManager, 'usageOf' | 'figuresOf' | 'figuresInto'>;

/** The meter's side: the one usage path, what a session may still use, and its slot and the reports of what it billed
 *  (a fake may have neither). */
export type SessionBillingPort = Pick<SessionManager, 'applyUsage' | 'remaining'> &
  Partial<Pick<SessionManager, 'slotOf' | 'reportUsage'>>;

/** Changes to live sessions besides a sale or a bill: ending one (or a user's), new limits, new rates, a clock started
 *  at its gate's opening, the address the portal lists, usage written now, a move to another MAC. */
export type SessionControlPort = Pick<
  SessionManager,
  'end' | 'endUser' | 'setLimits' | 'setRates' | 'startClock' | 'noteIp' | 'checkpoint' | 'move'
>;

/** Several devices per purchase: a session's join code, a device joining by it, a joined device removed. */
export type SessionDevicesPort = Pick<SessionManager, 'joinCode' | 'joinDevice' | 'removeDevice'>;

/** The purchase path: the checks and holds before money moves, the grant, and whether a payment was applied. */
export type SessionPurchasePort = Pick<SessionManager, 'prepare' | 'activate' | 'holdsReference' | 'isApplied'>;
