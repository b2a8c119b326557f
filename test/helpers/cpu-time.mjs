// test/run.mjs preloads this file into each test file's process: at exit it writes the CPU time the file used, its
// own and that of the children it reaped (the daemons, anvil, peers and their own reaped children), to the path in
// SLUICE_TEST_CPU_FILE, so the runner can print it beside the wall time. A file whose wall time is far above its CPU
// time waits (on timers, polls, peers) more than it computes. Linux /proc only; elsewhere nothing is written.
import { readFileSync, writeFileSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';

const path = process.env.SLUICE_TEST_CPU_FILE;
/** USER_HZ: 100 on every Linux this runs on (the kernel's ABI for /proc/<pid>/stat). */
const TICKS_PER_S = 100;

if (path && isMainThread) {
  process.on('exit', () => {
    try {
      const stat = readFileSync('/proc/self/stat', 'utf8');
      // After the comm's closing parenthesis: state is field 3, utime/stime/cutime/cstime are fields 14-17.
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const [utime, stime, cutime, cstime] = f.slice(11, 15).map(Number);
      writeFileSync(path, `${((utime + cutime) * 1000) / TICKS_PER_S} ${((stime + cstime) * 1000) / TICKS_PER_S}\n`);
    } catch {
      /* no /proc: no figure */
    }
  });
}
