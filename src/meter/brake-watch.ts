/**
 * The kernel-quota brake watch: a client with a kernel quota (portal/kernel-quota.ts) is stopped by the kernel itself
 * at its allotment, so its data session is never billed ahead or cut on a prediction. It is read just after its
 * predicted crossing, and within KERNEL_SLACK_BYTES of its allotment every tick asks the kernel whether it stopped
 * it: then it is ended (billing the few bytes the kernel's last dropped packet left, at most one segment), or given a
 * fresh quota of what is left when the kernel stopped it well short.
 */
import { SluiceError } from '../errors.ts';
import { stopping, type MeterContext } from './context.ts';
import type { KernelQuotaPort, MeteredSession } from './ports.ts';

/**
 * A braked session this close to its allotment is checked against the kernel: the kernel drops the packet that would
 * cross its quota, and a router's packets are GRO/GSO segments of up to 64 KiB, so it can stop up to one segment short.
 */
export const KERNEL_SLACK_BYTES = 64 * 1024;
/**
 * The kernel quota counts a download packet with its 14-byte Ethernet header (it sits at the LAN device's egress:
 * portal/kernel-quota-nft.ts), so it stops a client short of its allotment by 14 bytes a download packet: 0.9 % of what
 * it let through in full-size frames, 6.25 % in 224-byte ones. A braked session is watched (and refilled at a stop)
 * from this share of its quota's installed limit from the end, or KERNEL_SLACK_BYTES if more.
 */
export const HEADER_SLACK_SHARE = 1 / 16;
/** A braked session is read this long after its predicted crossing: after the kernel stopped it, not just before. */
const BRAKE_MARGIN_MS = 20;
/**
 * A braked session the kernel stopped with more than this left (the dropped segment was bigger than what was left) is
 * not ended but given a fresh quota of exactly what is left, up to MAX_BRAKE_REFILLS times: TCP resends the lost data
 * in smaller segments, so each stop comes closer. At most this much of an allotment is ever billed without passing.
 */
export const BRAKE_REFILL_MIN_BYTES = 4096;
const MAX_BRAKE_REFILLS = 5;
/**
 * How often (ms) braked sessions far from their allotment by sluice's count are checked against the kernel. The
 * kernel's count is the truth of what passed: a quota carried over a crash counted the bytes sluice never billed (no
 * counter mark to bill them from), so it stops the client while sluice still sees megabytes left — an ACTIVE session
 * whose client gets nothing. One nft read per interval while braked sessions exist.
 */
export const KERNEL_AUDIT_MS = 10_000;
/**
 * A braked session whose crossing at its reading's rate is this many poll intervals away, or nearer, has its kernel
 * quota checked against sluice's bytes left at every tick (verify): a quota whose count was reset (`nft reset
 * quotas`) or that was made again from an older reading (its table deleted) would let more through than is left.
 */
const VERIFY_POLLS = 2;

interface Braked {
  mac: string;
  /** When (clock) the kernel was seen to stop it with more than BRAKE_REFILL_MIN_BYTES left: a refill is due. */
  stoppedAt?: number;
  refills: number;
  /**
   * Re-armed (verify) with a guess of what passed since the reading: watched however far from its end, so a stop
   * short of it is refilled.
   */
  rearmed?: true;
}

export class BrakeWatch {
  /**
   * Braked data sessions within KERNEL_SLACK_BYTES of their allotment, by id: ended once the kernel says their quota is
   * used.
   */
  private readonly watched = new Map<string, Braked>();
  /**
   * Braked one-device sessions near their end (VERIFY_POLLS), by id → MAC: each tick compares the kernel's quota with
   * their bytes left. A shared session's devices are not: each split sets their quotas from the kernel's count anew.
   */
  private readonly verifying = new Map<string, { mac: string; rate: number }>();
  /** Each verified session's quota as last looked at (or as re-armed: a fresh count), by id. */
  private readonly looked = new Map<string, { limitBytes: number; usedBytes: number }>();
  /** Sessions ended because the kernel stopped them, and fresh quotas given (MeterStats). */
  ends = 0;
  refills = 0;
  /** Quotas found letting more through than their session had left (reset or made again behind sluice), re-armed. */
  rearms = 0;
  /** Of `ends`, those the audit found stopped by the kernel ahead of sluice's count (bytes that passed unbilled). */
  auditEnds = 0;
  private auditDueAt = 0;
  /** Far-from-the-end braked sessions the last audit found stopped by the kernel: their bytes left then, by id. */
  private stoppedFar = new Map<string, number>();
  /** Every far-from-the-end braked session's bytes left at the last audit, by id: what was billed since shows. */
  private leftAtAudit = new Map<string, number>();

  /**
   * `endStopped`: ends a session the kernel stopped at its allotment, billing its remainder (the cut planner's
   * endAhead).
   */
  constructor(
    private readonly ctx: MeterContext,
    private readonly kernel: KernelQuotaPort | undefined,
    private readonly endStopped: (sessionId: string, mac: string) => void,
    /** A shared session's bytes left split again among its devices (shared-quota.ts): false when it cannot be. */
    private readonly resplit?: (sessionId: string) => Promise<boolean>,
  ) {}

  braked(mac: string): boolean {
    return this.kernel?.has(mac) === true;
  }

  /** How close to its end a braked session is watched: the segment the kernel may drop, or the headers it counts. */
  private slackOf(mac: string): number {
    return Math.max(KERNEL_SLACK_BYTES, Math.floor((this.kernel?.limitOf?.(mac) ?? 0) * HEADER_SLACK_SHARE));
  }

  /** Braked sessions near their allotment or verified: a tick checks them (check) when there are any. */
  get size(): number {
    return this.watched.size + this.verifying.size;
  }

  /**
   * A braked session's next reading: just after its crossing at this rate, when the kernel has stopped it (a reading
   * before only re-aims). Within KERNEL_SLACK_BYTES it is watched: every tick asks the kernel whether it stopped it.
   */
  crossingInMs(session: MeteredSession, remainingBytes: number, rate: number): number {
    if (!(remainingBytes > 0)) return Infinity;
    if (remainingBytes <= this.slackOf(session.mac) && !this.watched.has(session.id))
      this.watched.set(session.id, { mac: session.mac, refills: 0 });
    if (
      this.kernel?.quotas !== undefined &&
      remainingBytes <= Math.max(this.slackOf(session.mac), rate * VERIFY_POLLS * this.ctx.pollIntervalMs) &&
      this.ctx.sessions.sharedDevices?.(session.id) === undefined
    )
      this.verifying.set(session.id, { mac: session.mac, rate: Number.isFinite(rate) ? rate : 0 });
    return rate > 0 ? remainingBytes / rate + BRAKE_MARGIN_MS : Infinity;
  }

  /**
   * The watched braked sessions whose kernel quota is used up: the kernel drops their packets, so what the portal
   * counted is all that passed. One with at most BRAKE_REFILL_MIN_BYTES left ends (those bytes billed: the allotment is
   * spent for all the client can send). One with more left (the kernel dropped a segment bigger than the rest) waits
   * for a reading taken after the stop, which is final, and gets a fresh quota of exactly what that reading leaves.
   * A session a top-up took out of reach, or ended, leaves the watch. Returns when the next tick is wanted (ms).
   */
  async check(dispatchAt: number): Promise<number> {
    const port = this.ctx.sessions;
    const kernel = this.kernel;
    if (kernel === undefined) return Infinity; // nothing is watched without one (braked() is false)
    const leftOf = (id: string, mac: string): number => (port.active(mac)?.id === id ? port.remainingBytes(id) : 0);
    for (const [id, w] of this.watched) {
      const left = leftOf(id, w.mac);
      if (!(left > 0) || (left > this.slackOf(w.mac) && !w.rearmed) || !this.braked(w.mac)) this.watched.delete(id);
    }
    for (const [id, { mac }] of this.verifying) {
      if (leftOf(id, mac) > 0 && this.braked(mac)) continue;
      this.verifying.delete(id);
      this.looked.delete(id);
    }
    // Stopped before this tick's reading was taken: that reading is the last that passed.
    for (const [id, w] of [...this.watched]) {
      if (w.stoppedAt === undefined || w.stoppedAt > dispatchAt) continue;
      delete w.stoppedAt;
      if (kernel.refill !== undefined && w.refills < MAX_BRAKE_REFILLS) {
        w.refills++;
        this.refills++;
        await kernel.refill(w.mac, leftOf(id, w.mac));
      } else {
        this.end(id, w.mac);
      }
    }
    const waiting = (): number => [...this.watched.values()].filter((w) => w.stoppedAt !== undefined).length;
    const toAsk = this.watched.size > waiting();
    if (!toAsk && this.verifying.size === 0) return waiting() > 0 ? 0 : Infinity;
    // One read serves both: the verified sessions' quotas, and which quotas are used up.
    const quotas = kernel.quotas !== undefined ? await kernel.quotas() : undefined;
    if (stopping(this.ctx)) return Infinity;
    if (quotas) await this.verify(quotas, leftOf, dispatchAt);
    if (!toAsk || stopping(this.ctx)) return waiting() > 0 ? 0 : Infinity;
    const usedUp =
      quotas === undefined
        ? await kernel.usedUp()
        : new Set([...(quotas ?? [])].filter(([, q]) => q.usedBytes >= q.limitBytes).map(([mac]) => mac));
    if (stopping(this.ctx)) return Infinity;
    for (const [id, w] of [...this.watched]) {
      if (w.stoppedAt !== undefined) continue;
      // A shared session's devices each hold a share of its bytes left (shared-quota.ts): any one stopped is checked.
      const stopped = usedUp.has(w.mac) ? w.mac : port.sharedDevices?.(id)?.find((mac) => usedUp.has(mac));
      if (stopped === undefined) continue;
      w.mac = stopped;
      const left = leftOf(id, w.mac);
      if (!(left > 0)) continue;
      if (left <= BRAKE_REFILL_MIN_BYTES || kernel.refill === undefined) this.end(id, w.mac);
      else w.stoppedAt = this.ctx.clock.now();
    }
    return waiting() > 0 ? 0 : Infinity;
  }

  /**
   * The verified sessions whose kernel quota was reset or replaced behind sluice: the kernel no longer lists it; its
   * count went backwards under the same limit since the last look; or it lets more through than sluice has left by
   * more than a segment (the kernel counts before sluice's counters and adds headers, so an untouched count is never
   * behind): a quota made again from an older reading, or a reset whose new count grew past the last look's before
   * this one (a slow tick).
   * Each gets a fresh quota of what is left, from the reading this tick just billed; counted
   * (`meter.kernel_quota_rearms`) and logged as ERR_KERNEL_QUOTA. A quota sluice re-armed is looked at next as the
   * fresh count it is: the bytes that passed between the reading and the re-arm (billed at the next reading, not
   * counted by the new quota) are not taken for another reset.
   */
  private async verify(
    quotas: ReadonlyMap<string, { limitBytes: number; usedBytes: number }>,
    leftOf: (id: string, mac: string) => number,
    dispatchAt: number,
  ): Promise<void> {
    const kernel = this.kernel;
    if (kernel?.refill === undefined) return;
    // What passed between this tick's reading and the quota read: the kernel counted it, the reading did not.
    const sinceReadingMs = Math.max(0, this.ctx.clock.now() - dispatchAt);
    for (const [id, v] of [...this.verifying]) {
      const left = leftOf(id, v.mac);
      if (!(left > 0)) continue;
      const q = quotas.get(v.mac);
      const before = this.looked.get(id);
      if (q !== undefined) this.looked.set(id, q);
      const kernelLeft = q === undefined ? Infinity : Math.max(0, q.limitBytes - q.usedBytes);
      const reset =
        q === undefined ||
        (before !== undefined && before.limitBytes === q.limitBytes && q.usedBytes < before.usedBytes) ||
        kernelLeft > left + KERNEL_SLACK_BYTES;
      if (!reset || kernelLeft <= left) continue;
      this.rearms++;
      this.ctx.onError(
        new SluiceError(
          'ERR_KERNEL_QUOTA',
          `the kernel quota of ${v.mac} ${q === undefined ? 'is gone' : `let ${kernelLeft} B more through`} while ` +
            `its session has ${left} B left (reset or made again behind sluice): re-armed with what is left`,
        ),
      );
      // Erring short is harmless: a stop with more left is watched and refilled exactly (check).
      const rest = Math.max(0, Math.floor(left - v.rate * sinceReadingMs));
      if (q !== undefined && kernel.rearm !== undefined) {
        // The count goes on (no fresh count to install while bytes pass): it stops the client `rest` from now.
        const limitBytes = q.usedBytes + rest;
        await kernel.rearm(v.mac, limitBytes);
        this.looked.set(id, { limitBytes, usedBytes: q.usedBytes });
      } else {
        await kernel.refill(v.mac, rest);
        this.looked.set(id, { limitBytes: rest, usedBytes: 0 });
      }
      const w = this.watched.get(id);
      if (w !== undefined) w.rearmed = true;
      else this.watched.set(id, { mac: v.mac, refills: 0, rearmed: true });
      if (stopping(this.ctx)) return;
    }
  }

  /**
   * Every KERNEL_AUDIT_MS: a braked session the kernel has stopped although sluice's count leaves it more than
   * KERNEL_SLACK_BYTES is ended at its allotment (the rest billed: the kernel let exactly the allotment through) once
   * two audits in a row found it stopped with the same bytes left — a top-up (more left) or late billing (less) waits
   * for the next. A shared session (several devices) with any device stopped is split again instead: one device's
   * quota holds a share of the bytes left, not the allotment. Near-end sessions are check()'s.
   *
   * Only sessions billed nothing over a whole interval are asked about: the kernel's counters sit after its quota
   * (portal/kernel-counters.ts), so a client it stopped bills nothing more, and one billed since the last audit was
   * passing traffic then. A session an audit sees for the first time is only noted (a new purchase's quota holds its
   * whole allotment; after a restart the next audit asks). A stop so comes to an audit up to two intervals later than
   * if every session were asked each time, and no nft read is made while every far session moves bytes or is new: in
   * the bench's busy window at 32 clients that was one `list table` of the quotas every 10 s (docs/performance.md
   * "Where sluice's part goes"). A shared session is asked at every audit after its first: another device's traffic
   * bills it while one device's share is stopped.
   */
  async audit(now: number): Promise<void> {
    const kernel = this.kernel;
    if (kernel === undefined) return;
    // The first audit comes an interval after the meter's first tick: a start-up is not an audit's business.
    if (this.auditDueAt === 0) this.auditDueAt = now + KERNEL_AUDIT_MS;
    if (now < this.auditDueAt) return;
    this.auditDueAt = now + KERNEL_AUDIT_MS;
    const port = this.ctx.sessions;
    const far: MeteredSession[] = [];
    const leftNow = new Map<string, number>();
    for (const s of port.activeSessions()) {
      if (s.metric !== 'bytes' || this.watched.has(s.id) || !this.braked(s.mac)) continue;
      const left = port.remainingBytes(s.id);
      leftNow.set(s.id, left);
      const before = this.leftAtAudit.get(s.id);
      if (before === left || (before !== undefined && port.sharedDevices?.(s.id) !== undefined)) far.push(s);
    }
    this.leftAtAudit = leftNow;
    if (far.length === 0) {
      this.stoppedFar.clear();
      return;
    }
    const usedUp = await kernel.usedUp();
    if (stopping(this.ctx)) return;
    const stopped = new Map<string, number>();
    for (const s of far) {
      const devices = port.sharedDevices?.(s.id);
      const stoppedNow = usedUp.has(s.mac) || devices?.some((mac) => usedUp.has(mac)) === true;
      if (!stoppedNow || port.active(s.mac)?.id !== s.id) continue;
      const left = port.remainingBytes(s.id);
      // Near its end and stopped, yet not watched: its last reading came before its quota was known as braked (a
      // restart's first tick bills before the quota table is read) and no byte has moved since, so no reading watches
      // it. Watched from now: the next tick's check ends it (seen in the lab: 317 B short of 16 MiB, ACTIVE for ever).
      if (!(left > this.slackOf(s.mac))) {
        this.watched.set(s.id, { mac: s.mac, refills: 0 });
        this.ctx.requestTick();
        continue;
      }
      // A device of a shared session stopped at its share (the others idle, so no tick splits): not the allotment let
      // through, and not for billing. Split again at once: the shares still add up to no more than what is left.
      if (devices !== undefined && this.resplit !== undefined && (await this.resplit(s.id))) {
        if (stopping(this.ctx)) return;
        continue;
      }
      if (this.stoppedFar.get(s.id) === left) {
        this.auditEnds++;
        this.ctx.onError(
          new SluiceError(
            'ERR_METER_UNBILLED',
            `the kernel quota let ${s.mac}'s allotment through while sluice billed ${left} B less: ended, the ` +
              'rest billed',
          ),
        );
        this.end(s.id, s.mac);
      } else {
        stopped.set(s.id, left);
      }
    }
    this.stoppedFar = stopped;
  }

  private end(id: string, mac: string): void {
    this.watched.delete(id);
    this.ends++;
    this.endStopped(id, mac);
  }
}
