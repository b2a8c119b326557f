// tier: fast
// A part's stop signal (src/stop-signal.ts) has a listener for each request in flight: many at once are not a leak
// and Node must not warn that they are.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { stopController } from '../src/stop-signal.ts';

function warningsWhile(listen: (signal: AbortSignal) => void, controller: AbortController): Promise<string[]> {
  const seen: string[] = [];
  const onWarning = (w: Error): void => {
    seen.push(w.name);
  };
  process.on('warning', onWarning);
  listen(controller.signal);
  // Node emits process warnings on a later tick.
  return new Promise((resolve) =>
    setTimeout(() => {
      process.off('warning', onWarning);
      resolve(seen);
    }, 50),
  );
}

const fortyListeners = (signal: AbortSignal): void => {
  for (let i = 0; i < 40; i++) signal.addEventListener('abort', () => undefined, { once: true });
};

test('forty requests in flight on one stop signal: no MaxListenersExceededWarning, and all are told', async () => {
  const plain = await warningsWhile(fortyListeners, new AbortController());
  assert.ok(plain.includes('MaxListenersExceededWarning'), 'a plain signal warns (the reason for this)');
  const controller = stopController();
  assert.equal(await warningsWhile(fortyListeners, controller), []);
  let told = 0;
  controller.signal.addEventListener('abort', () => told++);
  controller.abort();
  assert.is(told, 1);
  assert.ok(controller.signal.aborted);
});

test.run();
