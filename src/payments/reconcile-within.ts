/**
 * The start's bounded wait for a payment method's reconcile. What it settles or closes for the ends in the journal
 * goes through a facilitator, and one that is slow or down (a /settle may take the method's timeout, 120 s) must not
 * keep the meter, the gates and ubus from starting, nor SIGTERM from being heard. The rest goes on in the background:
 * each step is on flash before it is sent and moves nothing twice when repeated (a charge, a settle, a close).
 */
import { toSluiceError } from '../errors.ts';
import type { Log } from '../log.ts';

export const RECONCILE_WAIT_MS = 5_000;

/**
 * Awaits `work` at most RECONCILE_WAIT_MS; a refusal within the wait fails the start as before, a later one is logged.
 */
export async function reconcileWithin(name: string, work: Promise<void> | undefined, log: Log): Promise<void> {
  if (!work) return;
  let timer: NodeJS.Timeout | undefined;
  const waited = new Promise<'waiting'>((resolve) => {
    timer = setTimeout(() => resolve('waiting'), RECONCILE_WAIT_MS);
  });
  try {
    if ((await Promise.race([work.then(() => 'done' as const), waited])) === 'done') return;
  } finally {
    clearTimeout(timer);
  }
  log.warn('reconcile goes on in the background', { method: name, waited_ms: RECONCILE_WAIT_MS });
  work.then(
    () => log.info('reconcile done', { method: name }),
    (err: unknown) => {
      const e = toSluiceError(err);
      log.warn('reconcile failed', { method: name, code: e.code, reason: e.message });
    },
  );
}
