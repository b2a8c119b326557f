// tier: fast
// A sink read only while its section is on (src/upstream/section-sink.ts): never opened while off, opened and started
// by the start or the reload that switches it on, a failed load reported and tried again by the next reload, the
// loaded sink following every reload after.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Config } from '../../src/config/index.ts';
import { SluiceError } from '../../src/errors.ts';
import { SectionSink } from '../../src/upstream/section-sink.ts';
import type { SinkEvent, UpstreamSink } from '../../src/upstream/sink.ts';

/** Only what the section sink reads of a config: whether the section is on. */
const config = (on: boolean): Config => ({ hook: { enabled: on } }) as unknown as Config;

/** A sink that records what it is asked. */
function recorder(calls: string[]): UpstreamSink {
  return {
    name: 'hook',
    start: async () => void calls.push('start'),
    onEvent: (e) => void calls.push(`event ${e.type}`),
    reload: async (c) => void calls.push(`reload ${c.hook.enabled}`),
    stats: () => ({ state: 'running' }),
    close: async () => void calls.push('close'),
    destroy: () => void calls.push('destroy'),
  };
}

const started = { type: 'started', at: 1, session: {} } as unknown as SinkEvent;

function sectionSink(start: Config, calls: string[], fail = { times: 0 }): { sink: SectionSink; opens: Config[] } {
  const opens: Config[] = [];
  const sink = new SectionSink(start, {
    name: 'hook',
    on: (c) => c.hook.enabled,
    open: async (c) => {
      opens.push(c);
      if (fail.times > 0) {
        fail.times--;
        throw new SluiceError('ERR_MODULE_LOAD', 'the hook upstream: its code could not be loaded');
      }
      return recorder(calls);
    },
  });
  return { sink, opens };
}

test('off at start: never opened, hears nothing, says disabled; closes without a sink', async () => {
  const calls: string[] = [];
  const { sink, opens } = sectionSink(config(false), calls);
  await sink.start();
  sink.onEvent(started);
  await sink.reload(config(false));
  assert.equal(sink.stats(), { state: 'disabled' });
  assert.is(sink.publishVenue({}), false);
  await sink.close();
  assert.equal([opens.length, calls], [0, []]);
});

test('on at start: opened with the start config and started; events, reloads and the close go to it', async () => {
  const calls: string[] = [];
  const start = config(true);
  const { sink, opens } = sectionSink(start, calls);
  await sink.start();
  sink.onEvent(started);
  await sink.reload(config(false));
  await sink.reload(config(true));
  assert.equal(sink.stats(), { state: 'running' });
  await sink.close();
  assert.is(opens[0], start);
  assert.equal(calls, ['start', 'event started', 'reload false', 'reload true', 'close']);
  assert.is(opens.length, 1, "opened once: off and on again is the sink's own reload");
});

test('a reload that switches it on opens and starts it, no restart; events before that are not heard', async () => {
  const calls: string[] = [];
  const { sink, opens } = sectionSink(config(false), calls);
  await sink.start();
  sink.onEvent(started);
  const next = config(true);
  await sink.reload(next);
  sink.onEvent(started);
  assert.is(opens[0], next);
  assert.equal(calls, ['start', 'event started']);
});

test('code that cannot be loaded: the reload throws ERR_MODULE_LOAD, the next reload tries again', async () => {
  const calls: string[] = [];
  const { sink, opens } = sectionSink(config(false), calls, { times: 1 });
  await sink.start();
  try {
    await sink.reload(config(true));
    assert.unreachable('the reload succeeded');
  } catch (err) {
    assert.is((err as SluiceError).code, 'ERR_MODULE_LOAD');
  }
  assert.equal(sink.stats(), { state: 'disabled' });
  await sink.reload(config(true));
  assert.equal([opens.length, calls], [2, ['start']]);
});

test('at start, a load that fails throws (the host logs it and runs without the sink)', async () => {
  const { sink } = sectionSink(config(true), [], { times: 1 });
  try {
    await sink.start();
    assert.unreachable('the start succeeded');
  } catch (err) {
    assert.is((err as SluiceError).code, 'ERR_MODULE_LOAD');
  }
});

test('a sink whose start fails is destroyed, not kept', async () => {
  const calls: string[] = [];
  const sink = new SectionSink(config(true), {
    name: 'hook',
    on: (c) => c.hook.enabled,
    open: async () => ({
      ...recorder(calls),
      start: async () => {
        throw new Error('outbox cannot open');
      },
    }),
  });
  await sink.start().catch(() => undefined);
  sink.onEvent(started);
  assert.equal(calls, ['destroy']);
  assert.equal(sink.stats(), { state: 'disabled' });
});

test('closed while its code loads: the sink is destroyed, not left running', async () => {
  const calls: string[] = [];
  let loaded: () => void = () => {};
  const sink = new SectionSink(config(false), {
    name: 'hook',
    on: (c) => c.hook.enabled,
    open: async () => {
      await new Promise<void>((r) => (loaded = r));
      return recorder(calls);
    },
  });
  await sink.start();
  const reload = sink.reload(config(true));
  await sink.close();
  loaded();
  await reload;
  assert.equal(calls, ['destroy'], 'destroyed, never started');
  assert.equal(sink.stats(), { state: 'closed' });
});

test.run();
