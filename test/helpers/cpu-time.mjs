// test/run.mjs preloads this file into each test file's process: at exit it writes the CPU time the file used, its
// own and that of the children it reaped (the daemons, anvil, peers and their own reaped children), to the path in
// SLUICE_TEST_CPU_FILE, so the runner can print it beside the wall time. A file whose wall time is far above its CPU
// time waits (on timers, polls, peers) more than it computes. Linux /proc only; elsewhere nothing is written.
import { readFileSync, writeFileSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';
import { cpuSplit } from './proc-stat.mjs';

const path = process.env.SLUICE_TEST_CPU_FILE;
if (path && isMainThread) {
  process.on('exit', () => {
    try {
      const { user, sys } = cpuSplit(readFileSync('/proc/self/stat', 'utf8'), true);
      writeFileSync(path, `${user} ${sys}\n`);
    } catch {
      /* no /proc: no figure */
    }
  });
}
