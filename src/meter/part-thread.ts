/**
 * The usage worker's second scanning thread (portal/scan-part.ts): a large reply's second part is scanned there while
 * the worker scans the first. It is the worker's own module started again as a plain thread (workers/usage.ts serves
 * parts when its workerData says so), started on the first reply large enough to split and ended after a while
 * without one, so a router whose replies are small never has it, and an idle one never does (its pool thread ends
 * first). While it lives it costs ~15–20 MB of RSS (a Node thread and its isolate: measured +14–15 MB once started,
 * +17–21 MB after 60 parts of a 10k-client reply; docs/performance.md, "The 10k tick").
 *
 * A part goes to it by message (the bytes are shared: the worker's snapshot buffer is a SharedArrayBuffer), and its
 * answer comes back by message too, on a port the worker reads synchronously once the thread has written the part's
 * number in a shared cell: the worker blocks on that cell (Atomics.wait), never on its event loop, and it does so for a
 * part it no longer wants too, before it reads into the buffer again. A thread that is not ready, slow (2 s) or dead
 * only means the worker scans the part itself.
 */
import { MessageChannel, parentPort, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import {
  FIRST_PART,
  MIN_SPLIT_BYTES,
  PartRecords,
  scanPart,
  type PartResult,
  type PartScanner,
  type PortalFlavour,
} from '../portal/index.ts';

/** The workerData key that makes workers/usage.ts serve parts instead of waiting for Piscina's tasks. */
export const PART_THREAD = 'sluicePartThread';

export interface PartThreadData {
  port: MessagePort;
  cell: SharedArrayBuffer;
}

interface PartJob {
  seq: number;
  buffer: SharedArrayBuffer;
  byteOffset: number;
  start: number;
  n: number;
  flavour: PortalFlavour;
  /** The last part's arrays, handed back to be filled again (the part was given to the sink by then). */
  nums?: Float64Array;
  offs?: Int32Array;
}

/** `doneAt`: when the thread had scanned the part (performance.timeOrigin + now(), comparable across threads). */
type PartAnswer = { seq: number; part: PartResult; doneAt: number } | { seq: number; error: string };

/** The thread ends after this long without a part (as the pool's own threads do: pool.ts POOL_IDLE_TIMEOUT_MS). */
const IDLE_MS = 30_000;
/**
 * How long the worker waits, before it reads into the buffer again, for a part it scanned itself (dropped): the other
 * thread had at most as much to scan, so this is only ever reached by a thread that hangs or died. It is ended then.
 */
const WAIT_MS = 2_000;
/**
 * The first thread's share stays within these: the thread's speed is learnt from a few parts, and one slow part (a
 * core taken by something else for a while) must not hand nearly all of the next reply to one side.
 */
const SHARE_MIN = 0.3;
const SHARE_MAX = 0.8;
/**
 * How long past the end of its own part the worker waits for the other one: LATE_MS and LATE_SHARE of its own part's
 * time; later, it scans the part itself and gives the other thread a smaller share next time (LATE_STEP). Measured in
 * the bench at 10k clients on a quiet machine, the wait was 0–1.5 ms mostly (a first part of ~6 ms); with the machine
 * busy, waiting for a thread that got no core made the scan 13.6–27.1 ms against ~12 for one thread.
 */
const LATE_MS = 1;
const LATE_SHARE = 0.25;
const LATE_STEP = 0.05;
/** An openNDS client's record is ~900 bytes; the records grow if a part has more. */
const BYTES_PER_CLIENT_GUESS = 600;

/** The worker's side. */
export class PartThread implements PartScanner {
  readonly minBytes = MIN_SPLIT_BYTES;
  /**
   * The first thread's share of a reply, so that both parts end together: the two threads seldom scan as fast (the
   * other one is woken first, is less warm, or shares its core with the main thread's work and the portal), measured
   * at 10k clients in the meter bench: its half took ~11–15 ms where the first thread's took ~5–6 ms.
   */
  firstPart = FIRST_PART;
  /** The part asked for: where the first part started and when (performance.now()), and its split. */
  private asked = { from: 0, start: 0, n: 0, at: 0 };
  private worker: Worker | undefined;
  private port: MessagePort | undefined;
  private ready = false;
  /** Written by the thread (each its own): the number of the last part it answered. */
  private cell = new Int32Array(new SharedArrayBuffer(4));
  /** The last part handed over; the cell holds the last one answered. */
  private seq = 0;
  private idle: ReturnType<typeof setTimeout> | undefined;
  /** Resolves once the thread started last serves parts, or has ended. */
  private online: Promise<void> = Promise.resolve();
  /** The last answered part, whose arrays go back with the next one: a part's records are not allocated a tick. */
  private last: PartResult | undefined;

  /**
   * `lateMs`: how long past its own part the worker waits at least; from `waitMs` on it waits as for a hung thread
   * (tests: Infinity, the answer always waited for).
   */
  constructor(
    private readonly url: URL,
    private readonly idleMs = IDLE_MS,
    private readonly waitMs = WAIT_MS,
    private readonly lateMs = LATE_MS,
  ) {}

  begin(buf: Buffer, from: number, start: number, n: number, flavour: PortalFlavour): boolean {
    this.keepAlive();
    if (this.worker === undefined) this.spawn();
    // Not started yet (or a part timed out and it was ended): this reply is scanned by one thread.
    if (!this.ready || Atomics.load(this.cell, 0) !== this.seq) return false;
    const job: PartJob = {
      seq: ++this.seq,
      buffer: buf.buffer as SharedArrayBuffer,
      byteOffset: buf.byteOffset,
      start,
      n,
      flavour,
    };
    const last = this.last;
    this.last = undefined;
    if (last === undefined) this.port!.postMessage(job);
    else {
      job.nums = last.nums;
      job.offs = last.offs;
      this.port!.postMessage(job, [last.nums.buffer as ArrayBuffer, last.offs.buffer as ArrayBuffer]);
    }
    this.asked = { from, start, n, at: performance.now() };
    return true;
  }

  result(): PartResult | undefined {
    const firstDone = performance.now();
    // The other part should end about now (the shares follow the speeds): a thread much later than that did not get a
    // core (other work on the machine), and this one scans the part itself rather than wait for it.
    const late = this.lateMs + LATE_SHARE * (firstDone - this.asked.at);
    const answer = this.answer(Math.min(late, this.waitMs), late >= this.waitMs);
    if (answer === undefined) {
      this.firstPart = Math.min(SHARE_MAX, this.firstPart + LATE_STEP);
      return undefined;
    }
    if (!('part' in answer)) return undefined;
    this.learn(firstDone, answer.doneAt - performance.timeOrigin);
    this.last = answer.part;
    return answer.part;
  }

  /**
   * The part is not wanted, but its thread still reads the bytes, which the worker's next reads overwrite (its
   * sentinel quote among them, which its strings' ends rely on): so this waits for it too. Only a scan that stopped
   * before the split, or a wrong guess, drops a part.
   */
  drop(): void {
    const answer = this.answer(this.waitMs, true);
    if (answer !== undefined && 'part' in answer) this.last = answer.part;
  }

  /** Waits for the last part's answer, at most `waitMs` (then none; `hung`: the thread is ended too). */
  private answer(waitMs: number, hung: boolean): PartAnswer | undefined {
    const seq = this.seq;
    const deadline = performance.now() + waitMs;
    for (;;) {
      const answered = Atomics.load(this.cell, 0);
      if (answered === seq) break;
      const left = deadline - performance.now();
      if (left <= 0) {
        if (hung) this.stop();
        return undefined;
      }
      Atomics.wait(this.cell, 0, answered, left);
    }
    // The answer was posted before the cell was written: it is on the port.
    for (let m = receiveMessageOnPort(this.port!); m !== undefined; m = receiveMessageOnPort(this.port!)) {
      const answer = m.message as PartAnswer;
      if (answer.seq === seq) return answer;
    }
    return undefined;
  }

  /** Each side's speed on this part (bytes a ms) sets the next share, half-way from the last one. */
  private learn(firstDone: number, otherDone: number): void {
    const { from, start, n, at } = this.asked;
    const first = (start - from) / Math.max(0.05, firstDone - at);
    const other = (n - start) / Math.max(0.05, otherDone - at);
    const share = first / (first + other);
    this.firstPart = Math.min(SHARE_MAX, Math.max(SHARE_MIN, (this.firstPart + share) / 2));
  }

  /** Ends the thread (the worker's task is over for a while, or it did not answer). */
  stop(): void {
    clearTimeout(this.idle);
    this.idle = undefined;
    const worker = this.worker;
    this.worker = undefined;
    this.ready = false;
    this.port?.close();
    this.port = undefined;
    void worker?.terminate();
  }

  /** Starts the thread if it is not running; resolves once it serves parts (begin() starts it too, and meanwhile the
   *  worker scans alone). */
  start(): Promise<void> {
    if (this.worker === undefined) this.spawn();
    return this.ready ? Promise.resolve() : this.online;
  }

  private spawn(): void {
    const { port1, port2 } = new MessageChannel();
    // Nothing listens on port1: answers are taken with receiveMessageOnPort, and it never holds the worker open.
    port1.unref();
    this.cell = new Int32Array(new SharedArrayBuffer(4));
    Atomics.store(this.cell, 0, this.seq);
    const data: PartThreadData = { port: port2, cell: this.cell.buffer as SharedArrayBuffer };
    let worker: Worker;
    try {
      worker = new Worker(this.url, { workerData: { [PART_THREAD]: data }, transferList: [port2] });
    } catch {
      // No thread to be had (ERR_WORKER_INIT_FAILED: out of memory or threads): thrown out of begin(), it would fail
      // the tick (the scan throws) tick after tick; it only means one thread scans, and the next large reply tries.
      port1.close();
      port2.close();
      return;
    }
    worker.unref();
    // Ready once the thread serves parts (its module evaluated), not when it merely runs.
    this.online = new Promise((resolve) => {
      worker.once('message', () => {
        if (this.worker === worker) this.ready = true;
        resolve();
      });
      worker.once('exit', () => resolve());
    });
    const gone = (): void => {
      if (this.worker === worker) this.stop();
    };
    worker.on('error', gone);
    worker.once('exit', gone);
    this.worker = worker;
    this.port = port1;
  }

  private keepAlive(): void {
    clearTimeout(this.idle);
    this.idle = setTimeout(() => this.stop(), this.idleMs);
    this.idle.unref();
  }
}

/** The thread's side: scans each part it is sent and answers on the port, then in the cell. */
export function serveParts(data: PartThreadData): void {
  const cell = new Int32Array(data.cell);
  parentPort?.postMessage('ready');
  data.port.on('message', (job: PartJob) => {
    try {
      const buf = Buffer.from(job.buffer, job.byteOffset, job.n + 1);
      const expected = Math.ceil((job.n - job.start) / BYTES_PER_CLIENT_GUESS) + 16;
      const records = new PartRecords(expected, job.nums && job.offs && { nums: job.nums, offs: job.offs });
      const part = scanPart(buf, job.start, job.n, job.flavour, records);
      const answer: PartAnswer = { seq: job.seq, part, doneAt: performance.timeOrigin + performance.now() };
      data.port.postMessage(answer, [part.nums.buffer as ArrayBuffer, part.offs.buffer as ArrayBuffer]);
    } catch (err) {
      const answer: PartAnswer = { seq: job.seq, error: String(err) };
      data.port.postMessage(answer);
    }
    Atomics.store(cell, 0, job.seq);
    Atomics.notify(cell, 0);
  });
}
