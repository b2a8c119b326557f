/**
 * The controller a part aborts when it closes, whose signal every request it has in flight listens to (http-client.ts
 * adds one `abort` listener per exchange). Node warns (MaxListenersExceededWarning) past 10 listeners on one signal,
 * as if they leaked; here they are the requests under way at once (a café's burst of mint quotes or facilitator
 * calls), each removed when its exchange ends, so the signal has no such cap.
 */
import { setMaxListeners } from 'node:events';

export function stopController(): AbortController {
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  return controller;
}
