/**
 * What a test or bench process must undo when it exits, however it exits: the daemons and brokers it spawned into a
 * lab's namespaces, the labs it brought up. One 'exit' listener for all of them: a listener per spawn passed node's
 * limit of 10 in a bench that restarts its daemon per window (portal-cpu `--repeat 2`: MaxListenersExceededWarning,
 * 11 exit listeners). Each cleanup runs once, in the order registered; an exit handler may only do synchronous work
 * (spawnSync, kill).
 */
const cleanups = new Set<() => void>();
let installed = false;

/** Runs `cleanup` when the process exits, unless the returned function took it back first (the thing was undone). */
export function onProcessExit(cleanup: () => void): () => void {
  if (!installed) {
    installed = true;
    process.once('exit', () => {
      for (const c of [...cleanups]) {
        cleanups.delete(c);
        try {
          c();
        } catch {
          // One failed cleanup must not keep the others from running.
        }
      }
    });
  }
  cleanups.add(cleanup);
  return () => void cleanups.delete(cleanup);
}

let signalsInstalled = false;

/** SIGINT and SIGTERM exit the process (code 130), so that the exit cleanups run; installed once. */
export function exitOnSignals(): void {
  if (signalsInstalled) return;
  signalsInstalled = true;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));
}
