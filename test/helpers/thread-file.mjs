// One fast test file in a worker thread of test/helpers/thread-host.mjs (workerData.module: the file's bundle, from
// test/helpers/bundle.mjs). At exit it writes into workerData.figures (a Float64Array shared with the host) the CPU
// time the thread used, user + sys in ms, and the time it was runnable but waiting for a CPU (Linux
// /proc/thread-self/stat and schedstat; elsewhere both stay 0). A thread that is terminated (the runner's timeout) runs
// no exit handler: its figures stay 0.
import { readFileSync } from 'node:fs';
import { workerData } from 'node:worker_threads';
// Stack traces name the sources (the bundle's linked source maps, each read when a trace first needs it).
import './lazy-source-maps.mjs';

/** USER_HZ: 100 on every Linux this runs on (the kernel's ABI for /proc/<pid>/stat). */
const TICKS_PER_S = 100;
const { module, figures } = workerData;

process.on('exit', () => {
  try {
    const stat = readFileSync('/proc/thread-self/stat', 'utf8');
    // After the comm's closing parenthesis: utime and stime are fields 14 and 15 (the thread's own).
    const [utime, stime] = stat
      .slice(stat.lastIndexOf(')') + 2)
      .split(' ')
      .slice(11, 13)
      .map(Number);
    figures[0] = ((utime + stime) * 1000) / TICKS_PER_S;
    figures[1] = Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[1]) / 1e6;
  } catch {
    /* no /proc: no figures */
  }
});
await import(module);
