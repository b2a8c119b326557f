/**
 * The `hook` upstream (PC-sync, outbound): each session event (started, topup, rates, ended with its cause and usage)
 * is queued durable in the outbox (`<state_dir>/hook-outbox`, fsynced before anything is sent) and POSTed to `hook.url`
 * as the MQTT sink's JSON session message (docs/mqtt.md), signed per attempt (signature.ts). A 2xx answer acknowledges
 * it; anything else (no answer within `hook.timeout`, a refused connection, any other status) leaves it queued and the
 * delivery loop retries after a pause that doubles up to `hook.backoff_max`. One post at a time: the receiver sees the
 * router's events in `seq` order; delivery is at least once (a post whose answer was lost is sent again with the same
 * `seq`), so the receiver deduplicates by `router` + `seq` (docs/hook.md). A session's `ended` is queued once, ever
 * (end-marks.ts), also for the sessions the daemon's recovery ended.
 */
import { join } from 'node:path';
import type { Config, HookConfig } from '../../config/index.ts';
import { SluiceError, toSluiceError } from '../../errors.ts';
import type { Log } from '../../log.ts';
import { Backoff } from '../../backoff.ts';
import type { PaymentRef, Session } from '../../sessions/index.ts';
import { boundedFetch } from '../../http-client.ts';
import { backgroundTimers, systemClock, type Clock, type Timers } from '../../time.ts';
import { DeliveryLoop, deliveryTimers } from '../delivery.ts';
import { EndMarks } from '../end-marks.ts';
import { Outbox, type OutboxRecord } from '../outbox.ts';
import type { SinkEvent, SinkStats, UpstreamSink } from '../sink.ts';
import { decode, ratesMessage, sessionMessage } from '../mqtt/messages.ts';
import { signedHeaders } from './signature.ts';
import { stopController } from '../../stop-signal.ts';

const CONSUMER = 'hook';
const BACKOFF_MIN_MS = 1000;
/**
 * The most of a receiver's answer read: only its status counts, the body is read (this far) so that the connection
 * can be reused. A longer or slower body is cut at this bound or at `hook.timeout` and the connection closed.
 */
export const HOOK_ANSWER_MAX_BYTES = 4096;

export interface HookSinkDeps {
  log: Log;
  routerId: string;
  /** `main.state_dir`: the queue lives in `<state_dir>/hook-outbox`. */
  stateDir: string;
  /** Sessions the daemon's recovery ended (they ran out while it was down): their `ended` is due. */
  recovered?: () => { ended: readonly Session[] };
  /** A session the session manager still knows, for how long an `ended` mark is kept. */
  session?: (id: string) => Session | null;
  clock?: Clock;
  timers?: Timers;
  /** Tests: a shorter first pause. */
  backoffMinMs?: number;
}

type State = 'idle' | 'disabled' | 'running' | 'closing' | 'closed';

/** A receiver's answer that is not a 2xx: the record stays queued. */
class HookDeliveryError extends SluiceError {
  constructor(message: string, cause?: unknown) {
    super('ERR_HOOK_DELIVERY', message, cause === undefined ? undefined : { cause });
  }
}

export class HookSink implements UpstreamSink {
  readonly name = 'hook';
  private state: State = 'idle';
  private outbox: Outbox | undefined;
  private delivery: DeliveryLoop | undefined;
  private ended: EndMarks | undefined;
  private readonly clock: Clock;
  private readonly timers: Timers;
  private readonly backoff: Backoff;
  private routerId: string;
  private lastError: string | null = null;
  private readonly counters = { queued: 0, delivered: 0, failures: 0, queue_failures: 0 };
  /** Aborts the post in flight when the sink closes: a receiver that keeps sending must not keep the daemon alive. */
  private readonly closing = stopController();

  constructor(
    private config: HookConfig,
    private readonly deps: HookSinkDeps,
  ) {
    this.clock = deps.clock ?? systemClock;
    this.timers = deps.timers ?? backgroundTimers;
    this.routerId = deps.routerId;
    this.backoff = new Backoff({ minMs: deps.backoffMinMs ?? BACKOFF_MIN_MS, maxMs: config.backoffMaxMs, jitter: 0.2 });
  }

  async start(options: { atStart?: boolean } = {}): Promise<void> {
    if (!this.config.enabled) {
      this.state = 'disabled';
      return;
    }
    await this.open(options.atStart === true);
  }

  /** `atStart`: the daemon's start, where the queue is read synchronously (UpstreamSink.start). */
  private async open(atStart = false): Promise<void> {
    if (!this.outbox) {
      const dir = join(this.deps.stateDir, 'hook-outbox');
      this.outbox = await Outbox.open({
        dir,
        maxBytes: this.config.queueMax,
        consumers: [CONSUMER],
        atStart,
        clock: this.clock,
        timers: this.timers,
        onWarning: (w) => this.deps.log.warn('hook queue', { code: w.code, reason: w.message }),
      });
      this.delivery = new DeliveryLoop({
        source: this.outbox,
        consumer: CONSUMER,
        send: (r) => this.post(r),
        backoff: this.backoff,
        timers: deliveryTimers(this.clock, this.timers),
        maxInFlight: () => 1,
        onDelivered: () => {
          this.counters.delivered++;
          this.lastError = null;
          // Events are few (a start, a top-up, an end): the cursor written at each keeps a crash from posting
          // acknowledged ones again (the outbox alone writes it every 30 s).
          this.outbox
            ?.saveCursors()
            .catch((e: unknown) =>
              this.deps.log.warn('hook: cannot save the queue cursor', { reason: toSluiceError(e).message }),
            );
        },
        onFailure: (err, _r, pause) => {
          this.counters.failures++;
          this.lastError = toSluiceError(err).message;
          // The first failure of an outage and the capped retries, not every one.
          if (pause && (pause.first || pause.capped))
            this.deps.log.warn('hook delivery failed; retrying', { reason: this.lastError, retry_ms: pause.ms });
        },
      });
      this.ended = EndMarks.open(join(dir, 'ended'), this.queuedEnds(), (id) => this.deps.session?.(id) !== null);
    }
    this.state = 'running';
    for (const s of this.deps.recovered?.().ended ?? []) this.queue('ended', s, s.endedAt ?? this.clock.now());
    this.delivery?.start();
  }

  onEvent(event: SinkEvent): void {
    if (this.state !== 'running') return;
    if (event.type === 'started' || event.type === 'ended') this.queue(event.type, event.session, event.at);
    else if (event.type === 'topup') this.queue('topup', event.session, event.at, event.payment);
    else if (event.type === 'rates')
      this.append('rates', ratesMessage({ format: 'json', router: this.routerId, at: event.at }, event));
  }

  /** Queues one event, durable (fsynced before the delivery loop sees it); an `ended` only once per session. */
  private queue(kind: 'started' | 'topup' | 'ended', session: Session, at: number, payment?: PaymentRef): void {
    if (!this.outbox) return;
    if (kind === 'ended' && this.ended?.has(session.id)) return;
    this.append(kind, sessionMessage({ format: 'json', router: this.routerId, at }, kind, session, { payment }));
    if (kind === 'ended') this.ended?.mark(session.id);
  }

  private append(kind: string, message: (seq: number) => Buffer): void {
    const box = this.outbox;
    if (!box) return;
    this.counters.queued++;
    box.append(message, { durable: true }).catch((err: unknown) => {
      this.counters.queue_failures++;
      const e = toSluiceError(err);
      this.deps.log.warn('hook event not queued', { event: kind, code: e.code, reason: e.message });
    });
  }

  /**
   * One POST, signed afresh (time and nonce of this attempt): resolves on a 2xx. The exchange, answer included, ends
   * within `hook.timeout` (src/http-client.ts): a 2xx whose body is too long or too slow still acknowledges the event
   * (the receiver said it has it), so a trickling receiver delays the next event by the timeout at most.
   */
  private async post(r: OutboxRecord): Promise<void> {
    const { url, secret, timeoutMs } = this.config;
    const a = await boundedFetch(url, {
      method: 'POST',
      body: r.payload,
      headers: signedHeaders(secret, r.payload, this.clock.now()),
      timeoutMs,
      maxBytes: HOOK_ANSWER_MAX_BYTES,
      signal: this.closing.signal,
    });
    if (a.kind === 'none') throw new HookDeliveryError(`POST ${redactUrl(url)} failed: ${a.message}`);
    if (a.status < 200 || a.status > 299) throw new HookDeliveryError(`POST ${redactUrl(url)} answered ${a.status}`);
  }

  async reload(config: Config): Promise<void> {
    const next = config.hook;
    const was = this.config;
    this.config = next;
    this.routerId = config.main.routerId;
    this.backoff.configure({ minMs: this.deps.backoffMinMs ?? BACKOFF_MIN_MS, maxMs: next.backoffMaxMs });
    this.outbox?.setMaxBytes(next.queueMax);
    if (!next.enabled) {
      if (this.state === 'running') {
        this.deps.log.info('hook disabled by reload; queued events stay until it is enabled again');
        this.delivery?.pause();
      }
      this.state = 'disabled';
      return;
    }
    if (this.state !== 'running') {
      await this.open();
      this.delivery?.resume();
    } else if (was.url !== next.url || was.secret !== next.secret) {
      this.delivery?.retryNow();
    }
  }

  stats(): SinkStats {
    const q = this.outbox?.stats();
    return {
      state: this.state,
      url: redactUrl(this.config.url),
      ...this.counters,
      pending: q?.consumers[CONSUMER]?.pending ?? 0,
      queue_bytes: q?.bytes ?? 0,
      over_limit_bytes: q?.overLimitBytes ?? 0,
      last_error: this.lastError,
    };
  }

  async close(): Promise<void> {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.state = 'closing';
    await this.delivery?.close(Math.min(this.config.timeoutMs, 2000));
    // What is still in flight is given up (it stays queued, sent again after the restart) and its connection closed.
    this.closing.abort();
    await this.outbox?.close();
    this.ended?.close();
    this.state = 'closed';
  }

  destroy(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.closing.abort();
    this.delivery?.destroy();
    this.outbox?.close().catch(() => undefined);
    this.ended?.abandon();
  }

  /** Ids of the sessions whose `ended` the queue holds (a crash may have come before its mark). */
  private queuedEnds(): string[] {
    const ids: string[] = [];
    for (const r of this.outbox?.pending(CONSUMER, { limit: Number.MAX_SAFE_INTEGER }) ?? []) {
      try {
        const body = decode(r.payload) as { event?: unknown; session?: { id?: unknown } };
        if (body.event === 'ended' && typeof body.session?.id === 'string') ids.push(body.session.id);
      } catch {
        // Not readable: it is sent as it is.
      }
    }
    return ids;
  }
}

/** The URL without user info or query (where a receiver's token might be): for stats and logs. */
function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '';
  }
}
