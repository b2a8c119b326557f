// What a thread that runs several fast files (test/helpers/thread-file.mjs) puts back itself as a file ends, where it
// can make again exactly what a new thread would give the next file: Node's fetch's global dispatcher. Node's undici
// (node:internal/deps/undici, loaded by a thread's first fetch, Request, Response, Headers or FormData) sets it once,
// as a property of globalThis that cannot be deleted, and every later fetch of the thread goes through it, with the
// connections it keeps alive (unref'd sockets and their timers). A file that used it would otherwise end its thread
// (test/helpers/thread-leftovers.mjs) and the next file pay a new thread's start and undici's load again (~150 ms of
// CPU). The file's dispatcher is destroyed (its sockets closed) and a new one of Node's own class, as Node makes it,
// takes its place; the thread then waits for undici's clock tick the closed sockets' timers kept going (unref'd, due
// within half a second), which finds nothing left and stops. What is still running after that is a leftover as any.
// A dispatcher that is not Node's own (a package's undici, a file's own object) is left where it is: a leftover.
import { adopt, found, undiciTickDueMs } from './thread-leftovers.mjs';

/**
 * Globals a package sets as it loads, for code that reads them, not for its own use: deleted when the file added them
 * (the next file's instance of the package sets them again). regeneratorRuntime: @babel/runtime's regenerator, which
 * mqtt.js's worker-timers loads.
 */
const PACKAGE_GLOBALS = ['regeneratorRuntime'];
/** The key undici keeps its global dispatcher under (undici's lib/global.js). */
const DISPATCHER = Symbol.for('undici.globalDispatcher.1');
/** Where Node's bundled undici runs from, as a stack frame names it. */
const NODE_UNDICI = 'node:internal/deps/undici/undici';

/**
 * Whether `dispatcher`'s dispatch is Node's own undici's: asked to dispatch without a handler, it throws from there.
 */
function nodesOwn(dispatcher) {
  if (typeof dispatcher?.dispatch !== 'function' || typeof dispatcher.destroy !== 'function') return false;
  const { prepareStackTrace, stackTraceLimit } = Error;
  Error.prepareStackTrace = (_, sites) => sites[0]?.getFileName();
  Error.stackTraceLimit = 1;
  try {
    dispatcher.dispatch({}, undefined);
    return false;
  } catch (err) {
    return err?.stack === NODE_UNDICI;
  } finally {
    Error.prepareStackTrace = prepareStackTrace;
    Error.stackTraceLimit = stackTraceLimit;
  }
}

/**
 * Puts back what the file changed that the thread can make new (above), `before` (the thread's snapshot) taking the
 * new value as the thread's own. Returns a promise to let settle (the loop kept alive meanwhile), or null: nothing to
 * put back.
 */
export function putBack(before) {
  for (const key of PACKAGE_GLOBALS) if (!found(before, globalThis, key)) delete globalThis[key];
  const dispatcher = Object.hasOwn(globalThis, DISPATCHER) ? globalThis[DISPATCHER] : undefined;
  if (!nodesOwn(dispatcher)) return null;
  globalThis[DISPATCHER] = new dispatcher.constructor();
  adopt(before, globalThis, DISPATCHER);
  return (async () => {
    await dispatcher.destroy().catch(() => undefined); // a socket that will not close shows as a leftover
    const ms = undiciTickDueMs();
    if (ms !== null) await new Promise((resolve) => setTimeout(resolve, ms + 1));
  })();
}
