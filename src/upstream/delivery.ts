/**
 * The one delivery loop of the upstream sinks: takes a consumer's next records from the outbox, sends them with at most
 * `maxInFlight` awaiting the peer, acknowledges each in the outbox once the peer did, and retries what failed after a
 * pause (backoff.ts: doubling up to a cap, with the jitter the sink chose). After a failure one request at a time
 * probes the peer, then one more per acknowledgement, up to the bound: a peer back from an outage is not hit by the
 * whole backlog at once, which would queue the last requests behind the first past their timeout and make it record
 * retried ones twice.
 *
 * Records go out oldest first. A record is sent again only after it failed, or after resume() (a new connection: what
 * the old one had in flight may never have arrived). close() sends nothing more and waits, bounded, for the records in
 * flight; destroy() forgets them at once. Time comes in through DeliveryTimers, so the loop runs on fake time in tests.
 */
import type { Backoff } from '../backoff.ts';
import { backgroundTimers, systemClock, type Clock, type Timers } from '../time.ts';
import type { OutboxRecord } from './outbox-codec.ts';

/** The part of the outbox the loop reads (Outbox implements it). */
export interface DeliverySource {
  pending(consumer: string, options: { after?: number; limit?: number }): OutboxRecord[];
  ack(consumer: string, seq: number): void;
  onAppend(listener: () => void): () => void;
}

export interface DeliveryTimers {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  /** Runs `fn` in a later turn of the event loop: a producer (a meter tick) only queues, sending happens after it. */
  defer(fn: () => void): void;
}

/** A sink's clock and timers as the loop takes them (the sink's timers are unref'd ones unless a test's). */
export function deliveryTimers(clock: Clock, timers: Timers): DeliveryTimers {
  return {
    now: () => clock.now(),
    setTimeout: (fn, ms) => timers.setTimeout(fn, ms),
    clearTimeout: (handle) => timers.clearTimeout(handle),
    defer: (fn) => {
      setImmediate(fn);
    },
  };
}

/** Unref'd: the peer's socket keeps the process alive while there is work, not a pause. */
export const systemDeliveryTimers: DeliveryTimers = deliveryTimers(systemClock, backgroundTimers);

/** A pause that a failure started: its length, whether it is the first since the last success, whether at the cap. */
export interface Pause {
  ms: number;
  first: boolean;
  capped: boolean;
}

export interface DeliveryOptions {
  source: DeliverySource;
  consumer: string;
  /**
   * Sends one record: resolves once the peer acknowledged it, rejects if it did not. 'skip': nothing to send (expired,
   * unreadable), acknowledged at once without taking room.
   */
  send: (record: OutboxRecord) => Promise<void> | 'skip';
  /** The bound on records in flight (read every round: a reload may change it). */
  maxInFlight: () => number;
  /** Room the sink's own sends outside the outbox hold now (MQTT's status and command replies share its bound). */
  busy?: () => number;
  /** Runs at the start of every round, paused or not, before the records take the room left (MQTT: a due status). */
  beforeRound?: () => void;
  backoff: Backoff;
  /** Acknowledges a delivered record. Default: the source's ack for `consumer`. */
  ack?: (seq: number) => void;
  /** After a record was acknowledged. */
  onDelivered?: (record: OutboxRecord) => void;
  /** A send failed; `pause` when this failure started one (the others of the same round join it). */
  onFailure?: (err: unknown, record: OutboxRecord, pause: Pause | null) => void;
  timers?: DeliveryTimers;
}

type State = 'idle' | 'running' | 'paused' | 'closing' | 'closed';

export class DeliveryLoop {
  private state: State = 'idle';
  private readonly timers: DeliveryTimers;
  /** Sequence numbers sent and not yet answered. */
  private readonly inFlight = new Set<number>();
  /** Every record up to here was handed to send (and is in flight, acknowledged, or failed: then this moved back). */
  private cursor = 0;
  private window: number;
  private blockedUntil = 0;
  private wake: unknown = null;
  private scheduled = false;
  /** Bumped by resume() and destroy(): answers to sends from before are ignored. */
  private generation = 0;
  private detach: (() => void) | null = null;
  private settled: (() => void) | null = null;

  constructor(private readonly options: DeliveryOptions) {
    this.timers = options.timers ?? systemDeliveryTimers;
    this.window = options.maxInFlight();
  }

  /** Starts sending what the source holds, and what is appended from now on. */
  start(): void {
    if (this.state !== 'idle') return;
    this.state = 'running';
    this.detach = this.options.source.onAppend(() => this.kick());
    this.kick();
  }

  /** Sends nothing new until resume() (the connection to the peer is gone); answers still due are taken. */
  pause(): void {
    if (this.state === 'running') this.state = 'paused';
    this.clearWake();
  }

  /**
   * A fresh start with the peer (a new connection): what was in flight is forgotten and sent again, the pause and the
   * probing after a failure are over. The first resume() is a start().
   */
  resume(): void {
    if (this.state === 'idle') {
      this.start();
      return;
    }
    if (this.state !== 'running' && this.state !== 'paused') return;
    this.state = 'running';
    this.generation++;
    this.inFlight.clear();
    this.cursor = 0;
    this.window = this.options.maxInFlight();
    this.retryNow();
  }

  /** Ends the current pause and sends now (the peer changed: no reason to wait for the old one). */
  retryNow(): void {
    this.options.backoff.reset();
    this.blockedUntil = 0;
    this.clearWake();
    this.kick();
  }

  /** Schedules a round (after an append, a reload, a freed slot outside the outbox). */
  kick(): void {
    if (this.scheduled || this.state !== 'running') return;
    this.scheduled = true;
    this.timers.defer(() => {
      this.scheduled = false;
      this.round();
    });
  }

  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /** Records the probing allows in flight now (the bound, or fewer after a failure). */
  get windowSize(): number {
    return Math.min(this.window, this.options.maxInFlight());
  }

  /** How long the current pause still lasts, ms. */
  get pausedForMs(): number {
    return Math.max(0, this.blockedUntil - this.timers.now());
  }

  /** Sends nothing more; waits up to `graceMs` for the answers to what is in flight (else the peer sees them again). */
  async close(graceMs: number): Promise<void> {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.state = 'closing';
    this.stop();
    if (this.inFlight.size > 0 && graceMs > 0) {
      await new Promise<void>((resolve) => {
        const timer = this.timers.setTimeout(() => resolve(), graceMs);
        this.settled = () => {
          this.timers.clearTimeout(timer);
          resolve();
        };
      });
      this.settled = null;
    }
    this.state = 'closed';
  }

  /** Stops at once; answers still due are ignored. */
  destroy(): void {
    this.state = 'closed';
    this.generation++;
    this.stop();
    this.settled?.();
  }

  private stop(): void {
    this.clearWake();
    this.detach?.();
    this.detach = null;
  }

  private clearWake(): void {
    if (this.wake !== null) this.timers.clearTimeout(this.wake);
    this.wake = null;
  }

  private round(): void {
    if (this.state !== 'running') return;
    // The sink's own sends do not wait out the queue's pause.
    this.options.beforeRound?.();
    const now = this.timers.now();
    if (now < this.blockedUntil) {
      this.wake ??= this.timers.setTimeout(() => {
        this.wake = null;
        this.kick();
      }, this.blockedUntil - now);
      return;
    }
    let room = this.windowSize - (this.options.busy?.() ?? 0) - this.inFlight.size;
    if (room <= 0) return;
    let skipped = 0;
    for (const seq of this.inFlight) if (seq > this.cursor) skipped++;
    let acked = false;
    for (const record of this.options.source.pending(this.options.consumer, {
      after: this.cursor,
      limit: room + skipped,
    })) {
      if (this.inFlight.has(record.seq)) {
        this.cursor = record.seq;
        continue;
      }
      if (room === 0) break;
      this.cursor = record.seq;
      const sent = this.options.send(record);
      if (sent === 'skip') {
        this.ack(record);
        acked = true;
        continue;
      }
      room--;
      this.inFlight.add(record.seq);
      const generation = this.generation;
      sent.then(
        () => {
          if (generation === this.generation) this.delivered(record);
        },
        (err: unknown) => {
          if (generation === this.generation) this.failed(record, err);
        },
      );
    }
    // Skipped records took no room: what they left is filled in the next round.
    if (acked) this.kick();
  }

  private ack(record: OutboxRecord): void {
    if (this.options.ack) this.options.ack(record.seq);
    else this.options.source.ack(this.options.consumer, record.seq);
  }

  private delivered(record: OutboxRecord): void {
    this.inFlight.delete(record.seq);
    this.ack(record);
    this.options.backoff.reset();
    this.window = Math.min(this.options.maxInFlight(), this.window + 1);
    this.options.onDelivered?.(record);
    this.answered();
  }

  private failed(record: OutboxRecord, err: unknown): void {
    this.inFlight.delete(record.seq);
    this.window = 1;
    this.cursor = Math.min(this.cursor, record.seq - 1);
    let pause: Pause | null = null;
    // Requests in flight together fail together: the pause grows once per round, not once per request.
    if (this.timers.now() >= this.blockedUntil) {
      const first = this.options.backoff.count === 0;
      const ms = this.options.backoff.next();
      this.blockedUntil = this.timers.now() + ms;
      pause = { ms, first, capped: this.options.backoff.capped };
    }
    this.options.onFailure?.(err, record, pause);
    this.answered();
  }

  private answered(): void {
    if (this.inFlight.size === 0) this.settled?.();
    this.kick();
  }
}
