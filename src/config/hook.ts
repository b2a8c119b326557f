/**
 * The `hook` section: session events (started, topped up, ended) POSTed to a URL, HMAC-signed, through a durable queue
 * (docs/hook.md). Validated only when enabled, like every upstream section; problems name `hook.<option>`.
 */
import type { SectionReader } from './reader.ts';
import { parseQuantity, parseSecondsToMs, parseHttpUrl, type Parsed } from './values.ts';

export interface HookConfig {
  enabled: boolean;
  /** `http://` or `https://` with a host. */
  url: string;
  /** The HMAC-SHA256 key of every delivery (at least MIN_HOOK_SECRET characters). */
  secret: string;
  /** One POST's bound: no 2xx answer within it is a failure, retried. */
  timeoutMs: number;
  /** The longest pause between retries while the receiver fails (doubling from 1 s). */
  backoffMaxMs: number;
  /**
   * Bytes the queue (`<main.state_dir>/hook-outbox`) may hold; events are durable, so it grows past this rather than
   * drop one.
   */
  queueMax: number;
}

export const HOOK_DEFAULTS = { timeout: 10, backoff_max: 300, queue_max: 1 << 20 } as const;
export const MIN_HOOK_SECRET = 16;

export function readHookSection(r: SectionReader, enabled: boolean): HookConfig {
  const d = HOOK_DEFAULTS;
  const seconds =
    (min: number, max: number) =>
    (v: string): Parsed<number> =>
      parseSecondsToMs(v, min, max);
  const config: HookConfig = {
    enabled,
    url: r.required('url', '', parseHttpUrl),
    secret: r.string('secret', ''),
    timeoutMs: r.parsed('timeout', d.timeout * 1000, seconds(1, 300)),
    backoffMaxMs: r.parsed('backoff_max', d.backoff_max * 1000, seconds(1, 86400)),
    queueMax: r.parsed('queue_max', d.queue_max, (v) => {
      const p = parseQuantity(v, 'bytes');
      if (!p.ok) return p;
      return p.value >= 65536n && p.value <= 1073741824n
        ? { ok: true, value: Number(p.value) }
        : { ok: false, reason: 'must be from 65536 to 1073741824 bytes (units like KiB, MiB allowed)' };
    }),
  };
  // Unsigned posts would let anyone on the path forge "session ended" to the PC system: the secret is not optional.
  if (config.secret.length < MIN_HOOK_SECRET)
    r.report('secret', `is required while the hook is enabled: at least ${MIN_HOOK_SECRET} characters`);
  return config;
}
