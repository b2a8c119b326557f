/**
 * The clock and timers the sessions area runs on: the one pair in src/time.ts. Its timers are the background ones:
 * deadlines and checkpoints must not keep the daemon (or a test) alive on their own.
 */
export type { Clock, TimerHandle, Timers } from '../time.ts';
export { systemClock, backgroundTimers as systemTimers } from '../time.ts';
