/**
 * The stop order: meter, the end records being written, upstream, the parts with state to flush (the doors, the
 * payment methods), the ubus object, ubus, sessions, valve. Each step runs whatever the one before did: a failure is
 * logged and the stop goes on.
 */
import { toSluiceError } from '../errors.ts';
import type { Log } from '../log.ts';
import type { UbusObjectHandle } from '../ubus/index.ts';
import type { Parts } from './parts.ts';

export async function stopParts(
  { meter, upstream, ubus, sessions, valve, closers }: Parts,
  /** The `sluice` object, once registered. */
  object: () => UbusObjectHandle | undefined,
  log: Log,
): Promise<void> {
  const step = (what: string, fn: () => Promise<unknown>): Promise<void> =>
    Promise.resolve()
      .then(fn)
      .then(
        () => undefined,
        (err: unknown) => {
          log.warn(`stop: ${what} failed`, { reason: toSluiceError(err).message });
        },
      );
  await step('meter', () => meter.close());
  // Ends being written now are announced upstream once on flash (`end-written`): before the sinks close, not lost.
  await step('end records', () => sessions.writesSettled());
  await step('upstream', () => upstream.close());
  for (const close of closers) await step('a payment method or portal watch', close);
  await step('ubus object', async () => {
    if (ubus.state === 'ready') await object()?.remove();
  });
  await step('ubus', () => ubus.close());
  await step('sessions', () => sessions.close());
  await step('valve', () => valve.shutdown());
  log.info('sluice stopped');
}
