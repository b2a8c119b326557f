// Fast test files, one after another, in a worker thread of test/helpers/thread-host.mjs. workerData.module is the
// first file's bundle (test/helpers/bundle.mjs); each later one comes on workerData.control as { module }, the same
// bundle's path through a slot of its own (a directory link to the build). Every module of it is a new instance in
// this thread (bundle-linker.mjs links a file's chunks anew), and so is every package it imports: Node keys a module
// by its path, and with --preserve-symlinks the path a package is imported from is the one it resolves under.
// A file ends as its process would: when nothing is left for the loop (process 'beforeExit'). Then, when it left
// nothing behind (test/helpers/thread-leftovers.mjs), its result goes to the host as { done: { code, cpuMs, runqMs,
// heapBytes } } (code: process.exitCode, which uvu sets when a test failed; it is reset for the next file) and the
// thread waits for the next file (a listener on the control port, which keeps the loop alive until the file comes).
// Otherwise it says what was left ({ left: [...] }) and ends, as a thread used to after each file: its exit code is the
// file's, and its exit handlers run. What a file writes to process.stdout or stderr goes to the host as it is written,
// as { out }, on the same port as its end, so no line reaches another file's output.
// CPU: per file, user + sys ms of the thread and the time it was runnable but waiting for a CPU (Linux
// /proc/thread-self/stat and schedstat; elsewhere 0), in the done message or, as the thread exits, in
// workerData.figures (a Float64Array shared with the host, which also gets the thread's Linux tid). A thread terminated
// (the runner's timeout) runs no exit handler: its figures stay 0.
import { readFileSync, readlinkSync } from 'node:fs';
import { getHeapStatistics } from 'node:v8';
import { parentPort, workerData } from 'node:worker_threads';
// Stack traces name the sources (the bundle's linked source maps, each read when a trace first needs it).
import './lazy-source-maps.mjs';
import { importBundle } from './bundle-linker.mjs';
import { cpuMs } from './proc-stat.mjs';
import { FILE_END } from './file-end.mjs';
import { leftovers, snapshot, trackUnrefs } from './thread-leftovers.mjs';
import { putBack } from './thread-putback.mjs';

/**
 * The one global the test helpers set for their file's uvu (test/helpers/log-tails.ts, read by uvu-mend.mjs's
 * report): each file's own helper sets it again as it loads, so it is removed as a file ends, not counted as left.
 */
const HARNESS_GLOBALS = ['__sluiceLogTails'];
const { module, figures, control } = workerData;

/** The thread's CPU so far: [user + sys ms, ms runnable but waiting]; zeros without /proc. */
function threadCpu() {
  try {
    const cpu = cpuMs(readFileSync('/proc/thread-self/stat', 'utf8'));
    const runq = Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[1]) / 1e6;
    return [cpu, runq];
  } catch {
    return [0, 0];
  }
}

/** A chunk a stream was given, as text. */
const text = ({ chunk, encoding }) =>
  typeof chunk !== 'string' || /^(utf-?8|buffer)?$/i.test(encoding ?? '')
    ? String(chunk)
    : Buffer.from(chunk, encoding).toString();
// The worker's stdout and stderr streams post what they are given to the host's stream on a port of their own; here
// it goes on the port this file's end goes on. The streams themselves stay Node's (a write still goes through them).
for (const stream of [process.stdout, process.stderr]) {
  stream._writev = (chunks, done) => {
    parentPort.postMessage({ out: chunks.map(text).join('') });
    done();
  };
}

/** The CPU figures when the running file started; null between files. */
let started = null;
/** Whether the running file's end has had what the thread puts back put back (thread-putback.mjs), and is it done. */
let putBackDone = false;
let puttingBack = false;

function run(path) {
  started = threadCpu();
  putBackDone = false;
  // A rejection (the file threw as it loaded) is left unhandled: the thread ends with it, as a process would.
  importBundle(path);
}

/** This thread's id in Linux's task list (/proc/<pid>/task/<tid>): the host's CPU split counts it as a file's. */
let tid = 0;
try {
  tid = Number(readlinkSync('/proc/thread-self').split('/').at(-1));
} catch {
  /* no /proc */
}
figures[2] = tid;

process.on('beforeExit', () => {
  if (started === null || puttingBack) return;
  for (const key of HARNESS_GLOBALS) delete globalThis[key];
  if (!putBackDone) {
    putBackDone = true;
    process.emit(FILE_END);
    const settling = putBack(before);
    if (settling) {
      // The loop waits for it (it may settle at once, in this emit's microtasks: the interval goes in a later turn of
      // the loop, so that 'beforeExit' comes back here once the loop is empty again).
      puttingBack = true;
      const alive = setInterval(() => {}, 60_000);
      void settling.finally(() =>
        setImmediate(() => {
          puttingBack = false;
          clearInterval(alive);
        }),
      );
      return;
    }
  }
  const code = process.exitCode ?? 0;
  const left = leftovers(before);
  if (left.length > 0) {
    parentPort.postMessage({ left });
    return; // the thread ends; the exit handler below reports the file's CPU
  }
  const [cpu, runq] = threadCpu();
  const heapBytes = getHeapStatistics().used_heap_size;
  const done = { code, cpuMs: cpu - started[0], runqMs: runq - started[1], heapBytes, tid };
  started = null;
  process.exitCode = undefined;
  parentPort.postMessage({ done });
  control.once('message', (job) => run(job.module));
});

process.on('exit', () => {
  if (started === null) return;
  const [cpu, runq] = threadCpu();
  figures[0] = cpu - started[0];
  figures[1] = runq - started[1];
});

trackUnrefs();
/** The thread as the first file found it: what each file must leave as it was. */
let before;
// Once this module has run: until then Node's loader holds an exit listener of its own for it.
setImmediate(() => {
  before = snapshot();
  run(module);
});
