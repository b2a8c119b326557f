/**
 * The daemon's ubus connection: connected with retries at start (ubusd normally starts long before sluice, START=95,
 * but after a crash of both procd restarts them in any order), then one log line when it is lost and one when it is
 * back (the client retries silently with backoff in between), so a restarted ubusd shows as a pair in logread
 * instead of a line per attempt or nothing at all. The ubus library itself stays free of sluice's logging.
 */
import { SluiceError, toSluiceError } from './errors.ts';
import type { Log } from './log.ts';
import { UbusClient } from './ubus/index.ts';

const ATTEMPTS = 30;

export async function connectUbus(socketPath: string, log: Log): Promise<UbusClient> {
  let delay = 100;
  for (let attempt = 1; ; attempt++) {
    try {
      const ubus = await UbusClient.connect({ socketPath, reconnect: { minDelayMs: 100, maxDelayMs: 5000 } });
      logConnection(ubus, socketPath, log);
      return ubus;
    } catch (err) {
      if (attempt >= ATTEMPTS)
        throw new SluiceError('ERR_UBUS_CONNECT', `cannot connect to ubus at ${socketPath}`, { cause: err });
      if (attempt === 1)
        log.warn('ubus not reachable yet, retrying', { socket: socketPath, reason: toSluiceError(err).message });
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 2000);
    }
  }
}

function logConnection(ubus: UbusClient, socketPath: string, log: Log): void {
  let lostAt = 0;
  ubus.on('state', (next: string, prev: string) => {
    if (next === 'reconnecting' && prev === 'ready') {
      lostAt = Date.now();
      log.warn('ubus connection lost, reconnecting', { socket: socketPath });
    } else if (next === 'ready' && prev === 'reconnecting') {
      log.info('ubus connection re-established', { socket: socketPath, down_ms: Date.now() - lostAt });
    }
  });
}
