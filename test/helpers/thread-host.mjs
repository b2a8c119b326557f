// The process test/run.mjs runs the fast tier's files in (test/helpers/thread-pool.mjs starts it): each file in a
// worker thread of its own (test/helpers/thread-file.mjs), several at a time, and the process lives for the whole run.
// A worker thread is a fresh V8 isolate with its own event loop, so a file still gets its own module graph (every
// module of src/ evaluated anew), globals, timers, fake clock, process listeners and copy of process.env; what the
// threads share is the process: its working directory (a thread cannot change it: process.chdir throws there), umask,
// V8 flags and open files. What a file no longer pays is a node process's start (~0.1 s of CPU) and its exit.
// Messages from the runner: { run: { id, module, env } } starts a file, { stop: id } terminates it (the runner's
// timeout). To the runner: { id, code, out, cpuMs, runqMs } when a file's thread has ended and its output is read.
import { Worker } from 'node:worker_threads';

const FILE = new URL('./thread-file.mjs', import.meta.url);
/** How long a thread's output streams may take to end after the thread did. */
const DRAIN_MS = 2_000;
const running = new Map();

function start({ id, module, env }) {
  const figures = new Float64Array(new SharedArrayBuffer(16));
  const worker = new Worker(FILE, {
    workerData: { module, figures },
    env: { ...process.env, ...env },
    stdout: true,
    stderr: true,
  });
  running.set(id, worker);
  let out = '';
  const drained = [worker.stdout, worker.stderr].map(
    (stream) =>
      new Promise((resolve) => {
        stream.setEncoding('utf8');
        stream.on('data', (d) => (out += d));
        stream.once('end', resolve);
        stream.once('error', resolve);
      }),
  );
  // An exception nothing caught, or a rejection nothing handled: the thread ends with it, as a process would.
  worker.on('error', (err) => (out += `\n[run] the file threw and nothing caught it:\n${err?.stack ?? err}\n`));
  worker.once('exit', async (code) => {
    await Promise.race([Promise.all(drained), new Promise((r) => setTimeout(r, DRAIN_MS))]);
    running.delete(id);
    process.send({ id, code, out, cpuMs: figures[0], runqMs: figures[1] });
  });
}

process.on('message', (msg) => {
  if (msg.run) start(msg.run);
  else if (msg.stop !== undefined) running.get(msg.stop)?.terminate();
});
// The runner is gone (it ended or was killed): nothing is left to report to.
process.on('disconnect', () => process.exit(0));
