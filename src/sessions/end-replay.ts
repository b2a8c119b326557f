/**
 * The restart's end replay: which ends already on flash a restart hands the upstream sinks again (RecoveryReport
 * `lastEnds`). Announcements (RADIUS Stop, hook, MQTT) follow an end's fsync, so a crash in between can leave the
 * newest ends written but unannounced; the sinks' end marks drop those they did announce. Pure: recover() picks the
 * ends before it ends anything itself (its own ends are `ended`), and keeps only those still retained once it pruned.
 */
import { copySession } from './model.ts';
import type { Session } from './model.ts';

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
