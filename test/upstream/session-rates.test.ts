// tier: fast
/**
 * The session messages of the MQTT sink and of the hook (the same builder) carry the session's speed tier,
 * `rate_down` / `rate_up` in bit/s, null when not limited that way, in both formats.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decode, loadMsgpack, sessionMessage } from '../../src/upstream/mqtt/messages.ts';
import { fakeSession } from './mqtt-rig.ts';

// msgpackr is read when the MQTT sink opens its queue (messages.ts); this file decodes without a sink.
await loadMsgpack();

const rates = (format: 'json' | 'msgpack', session: ReturnType<typeof fakeSession>) => {
  const body = decode(sessionMessage({ format, router: 'r1', at: 5_000 }, 'started', session)(1)) as {
    session: Record<string, unknown>;
  };
  return [body.session['rate_down'], body.session['rate_up']];
};

test('started/topup/ended messages carry rate_down and rate_up (bit/s; null: not limited)', () => {
  for (const format of ['json', 'msgpack'] as const) {
    assert.equal(rates(format, fakeSession({ rates: { downBps: 8_000_000, upBps: null } })), [8_000_000, null], format);
    assert.equal(
      rates(format, fakeSession({ rates: { downBps: 2_000_000, upBps: 1_000_000 } })),
      [2_000_000, 1_000_000],
      format,
    );
    assert.equal(rates(format, fakeSession({ rates: { downBps: null, upBps: null } })), [null, null], format);
  }
  const ended = decode(
    sessionMessage(
      { format: 'json', router: 'r1', at: 5_000 },
      'ended',
      fakeSession({
        rates: { downBps: 4_000_000, upBps: 512_000 },
        state: 'TERMINATED',
        endCause: 'admin',
        endedAt: 5_000,
      }),
    )(2),
  ) as { session: Record<string, unknown> };
  assert.equal(
    [ended.session['rate_down'], ended.session['rate_up']],
    [4_000_000, 512_000],
    'an end says what the session was limited to',
  );
});

test.run();
