/**
 * SIGTERM and procd's stop window (term_timeout 15 s in files/etc/init.d/sluice): the daemon must exit within it
 * whatever a peer does. Past it procd sends SIGKILL; so does this helper, and the test fails. The
 * bound is the behaviour under test (procd's), not a speed check: a stop that waits out a peer's timeout (up to 120 s)
 * is far outside it.
 */
import type { ChildProcess } from 'node:child_process';
import * as assert from 'uvu/assert';

export const STOP_WINDOW_MS = 15_000;

/** SIGTERM to the lab's daemon, then its exit within STOP_WINDOW_MS (else SIGKILL and a failure with its output). */
export async function stopsWithinWindow(lab: {
  daemon: ChildProcess | undefined;
  output: string;
}): Promise<number | null> {
  const child = lab.daemon!;
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    exited,
    new Promise<'still running'>((r) => {
      timer = setTimeout(() => r('still running'), STOP_WINDOW_MS);
    }),
  ]);
  clearTimeout(timer);
  if (outcome === 'still running') {
    child.kill('SIGKILL');
    await exited;
    lab.daemon = undefined;
    assert.unreachable(
      `the daemon was still running ${STOP_WINDOW_MS} ms after SIGTERM\n--- daemon output ---\n${lab.output}`,
    );
  }
  lab.daemon = undefined;
  return outcome as number | null;
}
