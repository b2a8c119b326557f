// Loaded with `node --import` before src/main.ts: a module hook that sends the process a SIGHUP the moment the
// daemon's command module (src/cli.ts) is loaded, i.e. while the daemon's modules load, before any of their code ran.
// Deterministic where a timed kill after spawn is not: the signal lands inside the window that killed the daemon.
import { register } from 'node:module';

const hook = `export async function load(url, context, next) {
  if (url.endsWith('/src/cli.ts')) process.kill(process.pid, 'SIGHUP');
  return next(url, context);
}`;
register(`data:text/javascript,${encodeURIComponent(hook)}`, import.meta.url);
