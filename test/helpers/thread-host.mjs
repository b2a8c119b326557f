// The process test/run.mjs runs the fast tier's files in (test/helpers/thread-pool.mjs starts it): each file in a
// worker thread (test/helpers/thread-file.mjs), several at a time, and the process lives for the whole run. A worker
// thread is a V8 isolate with its own event loop, globals, timers, process listeners and copy of process.env; a thread
// runs several files one after another, each imported through a slot of its own (every module of its bundle, packages
// too, evaluated anew), as long as each file left nothing behind (test/helpers/thread-leftovers.mjs); one that did ends
// its thread, and the next file gets a new one. What the threads share is the process: its working directory (a
// thread cannot change it: process.chdir throws there), umask, V8 flags and open files. What a file no longer pays is
// a node process's start and exit, and, in a thread it reuses, a thread's.
// Messages from the runner: { run: { id, module, slots } } runs a file (slots: its bundle's path in each slot, for a
// thread's second file on), { stop: id } terminates its thread (the runner's timeout). To the runner: { id, code, out,
// cpuMs, runqMs, thread, tid, files, left } when a file ended and its output is read (thread: the worker's threadId,
// tid: its Linux thread id; files: how many the thread has run, this one included; left: what it left behind, then
// its thread ended).
import { MessageChannel, Worker } from 'node:worker_threads';

const FILE = new URL('./thread-file.mjs', import.meta.url);
/** How long a thread's output streams may take to end after the thread did. */
const DRAIN_MS = 2_000;
/**
 * A thread keeps the packages every file of it loaded (Node's loader frees no module while its isolate lives; a file's
 * chunks, bundle-linker.mjs's, are freed with the file): past this much heap in use as a file ends, the thread ends and
 * the next file gets a new one.
 */
const HEAP_BYTES = 160 * 1024 * 1024;
/** Threads kept waiting for a file: one per file the host runs at once is enough (two while a core idles). */
const IDLE_MOST = 2;

/** Threads waiting for their next file, the one that waited least last. */
const idle = [];
/** The most slots a file came with: a thread that has run more files than that has none left for another. */
let mostSlots = 0;
/** Threads by the id of the file they run. */
const running = new Map();

function send(thread, result) {
  const job = thread.job;
  thread.job = null;
  running.delete(job.id);
  process.send({ id: job.id, out: job.out, thread: thread.worker.threadId, files: thread.files, ...result });
}

function startThread(job) {
  const figures = new Float64Array(new SharedArrayBuffer(24));
  const { port1, port2 } = new MessageChannel();
  const worker = new Worker(FILE, {
    workerData: { module: job.module, figures, control: port2 },
    transferList: [port2],
    env: { ...process.env },
    stdout: true,
    stderr: true,
  });
  const thread = { worker, control: port1, job, files: 1, left: null };
  // thread-file.mjs sends what a file writes as messages; these streams carry only what bypassed process.stdout's
  // write (none expected), read into the running file's output.
  const drained = [worker.stdout, worker.stderr].map(
    (stream) =>
      new Promise((resolve) => {
        stream.setEncoding('utf8');
        stream.on('data', (d) => thread.job && (thread.job.out += d));
        stream.once('end', resolve);
        stream.once('error', resolve);
      }),
  );
  worker.on('message', (msg) => {
    if (msg.out !== undefined) thread.job.out += msg.out;
    else if (msg.left) thread.left = msg.left;
    else if (msg.done) {
      const { code, cpuMs, runqMs, heapBytes, tid } = msg.done;
      send(thread, { code, cpuMs, runqMs, tid, left: null });
      if (heapBytes < HEAP_BYTES && thread.files <= mostSlots) idle.push(thread);
      else end(thread);
      while (idle.length > IDLE_MOST) end(idle.shift());
    }
  });
  // An exception nothing caught, or a rejection nothing handled: the thread ends with it, as a process would. Said
  // after what the file wrote before it, which the streams may still be carrying when the error comes.
  let thrown = '';
  worker.on('error', (err) => {
    thrown = `\n[run] the file threw and nothing caught it:\n${err?.stack ?? err}\n`;
  });
  worker.once('exit', async (code) => {
    const i = idle.indexOf(thread);
    if (i >= 0) idle.splice(i, 1);
    port1.close();
    if (!thread.job) return;
    await Promise.race([Promise.all(drained), new Promise((r) => setTimeout(r, DRAIN_MS))]);
    thread.job.out += thrown;
    send(thread, { code, cpuMs: figures[0], runqMs: figures[1], tid: figures[2], left: thread.left });
  });
  return thread;
}

/** Ends a thread that waits for a file. */
function end(thread) {
  const i = idle.indexOf(thread);
  if (i >= 0) idle.splice(i, 1);
  thread.worker.terminate();
}

function start({ id, module, slots }) {
  const job = { id, module, out: '' };
  mostSlots = Math.max(mostSlots, slots.length);
  // A waiting thread with a slot left for the file: the thread's k-th file (k ≥ 2) is imported through slot k - 1.
  const i = idle.findLastIndex((t) => t.files <= slots.length);
  let thread = i < 0 ? null : idle.splice(i, 1)[0];
  if (thread) {
    thread.job = job;
    thread.files++;
    thread.control.postMessage({ module: slots[thread.files - 2] });
  } else thread = startThread(job);
  running.set(id, thread);
}

process.on('message', (msg) => {
  if (msg.run) start(msg.run);
  else if (msg.stop !== undefined) running.get(msg.stop)?.worker.terminate();
});
// The runner is gone (it ended or was killed): nothing is left to report to.
process.on('disconnect', () => process.exit(0));
