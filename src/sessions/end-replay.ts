/**
 * The restart's end and payment replay: which ends already on flash a restart hands the upstream sinks again
 * (RecoveryReport `lastEnds`). Announcements (RADIUS Stop, hook, MQTT) follow an end's fsync, so a crash in between can
 * leave the newest ends written but unannounced; the sinks' end marks drop those they did announce. Pure: recover()
 * picks the ends before it ends anything itself (its own ends are `ended`), and keeps only those still retained once it
 * pruned.
 */
import { copySession } from './model.ts';
import type { PaymentRef, Session } from './model.ts';

/**
 * How long before the newest end on flash an end may have been written without its announcement (RADIUS Stop, hook,
 * MQTT) reaching the sinks' queues: announcements follow the end's fsync, and a crash in between loses the queueing.
 * Ends are written a few ms apart from their announcement; the window is wide for a slow flash under load.
 */
export const UNANNOUNCED_WINDOW_MS = 10_000;

/** Ended sessions whose end was written within UNANNOUNCED_WINDOW_MS of the newest end, as views. */
export function lastEnds(ended: Iterable<Session>): Session[] {
  const all = [...ended];
  const newest = all.reduce((max, s) => Math.max(max, s.endedAt ?? 0), 0);
  return all.filter((s) => s.endedAt !== null && s.endedAt >= newest - UNANNOUNCED_WINDOW_MS).map(copySession);
}

/**
 * Only ends the manager still retains: the sinks' end marks are kept only for those (EndMarks `known`), so an end
 * past retention — the newest on a quiet router restarted a day later — was announced and its mark dropped since.
 */
export function stillRetained(ends: readonly Session[], retained: ReadonlyMap<string, unknown>): Session[] {
  return ends.filter((s) => retained.has(s.id));
}

/** A payment to announce again at a restart: the purchase (`started`) or a top-up, with its session as it is now. */
export interface PaidEvent {
  event: 'started' | 'topup';
  session: Session;
  payment: PaymentRef;
}

/**
 * Payments made within UNANNOUNCED_WINDOW_MS of the newest payment the journal holds, oldest first. A purchase's
 * `started` (a top-up's `topup`) follows its journal write the way an end's announcement follows the end's: the record
 * is in the page cache once written, so a kill -9 during its fsync brings the paid session back at the restart while
 * no sink ever heard of the payment. The sinks' payment marks drop those they did announce.
 */
export function lastPayments(held: Iterable<Session>): PaidEvent[] {
  const sessions = [...held];
  const paid: PaidEvent[] = [];
  let newest = 0;
  for (const s of sessions) for (const p of s.payments) newest = Math.max(newest, p.at);
  for (const s of sessions) {
    s.payments.forEach((p, i) => {
      if (p.at < newest - UNANNOUNCED_WINDOW_MS) return;
      const view = copySession(s);
      paid.push({ event: i === 0 ? 'started' : 'topup', session: view, payment: { ...p } });
    });
  }
  return paid.sort((a, b) => a.payment.at - b.payment.at);
}
