// The portal's queue as a meter sees it (MeterOptions.portal), recording when it is taken and released.
import type { MeterOptions } from '../../src/meter/index.ts';

/** Pushes 'lock' into `events` when the queue is taken and 'unlock' when it is released. */
export function recordingPortalQueue(events: string[]): NonNullable<MeterOptions['portal']> {
  return {
    runExclusive: async (fn) => {
      events.push('lock');
      try {
        return await fn();
      } finally {
        events.push('unlock');
      }
    },
  };
}
