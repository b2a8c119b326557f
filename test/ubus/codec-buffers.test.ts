// tier: fast
// A message's writer grows through buffers outside V8's heap that only a garbage collection frees; the codec keeps the
// buffer a finished writer leaves for the next one (ubus/codec/blob.ts), so a daemon sending the same event every
// tick allocates none, and the main thread's malloc heap is not littered with dead ones between collections.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  BlobWriter,
  MsgType,
  decodeMessage,
  encodeBlobmsgTable,
  encodeMessage,
  type BlobmsgTable,
  type UbusMessage,
} from '../../src/ubus/codec/index.ts';
import { SPARE_MAX_BYTES } from '../../src/ubus/codec/blob.ts';

/** The meter's usage event of `n` sessions, as the daemon sends it (an event `send` to the bus). */
function usageEvent(n: number): UbusMessage {
  const sessions = [];
  for (let i = 0; i < n; i++) {
    sessions.push({
      id: `${i.toString(16).padStart(16, '0')}`,
      mac: `02:00:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`,
      used: String(4_000 * i),
      remaining: String(1 << 30),
      bytes_up: 400 * i,
      bytes_down: 4_000 * i,
    });
  }
  return {
    type: MsgType.INVOKE,
    seq: 7,
    peer: 1,
    attrs: { objid: 1, method: 'send', data: { id: 'sluice.usage', data: { sessions } } },
  };
}

/** Buffers of at least 256 bytes (a writer's, not a scalar's 8) Buffer.alloc made while `run` ran. */
function writerBuffersMade(run: () => void): number {
  const real = Buffer.alloc;
  let made = 0;
  Buffer.alloc = ((...args: Parameters<typeof real>) => {
    if (args[0] >= 256) made++;
    return real(...args);
  }) as typeof real;
  try {
    run();
  } finally {
    Buffer.alloc = real;
  }
  return made;
}

test("the same event again and again: its writer's buffer is made once, then reused", () => {
  const event = usageEvent(200);
  encodeMessage(event);
  assert.is(
    writerBuffersMade(() => {
      for (let i = 0; i < 50; i++) encodeMessage(event);
    }),
    0,
  );
  // A table encoded apart, and a message carrying one already encoded, take the two kept buffers in turn.
  const data = event.attrs.data as BlobmsgTable;
  const reply: UbusMessage = {
    type: MsgType.DATA,
    seq: 7,
    peer: 1,
    attrs: { objid: 1, dataRaw: encodeBlobmsgTable(data) },
  };
  encodeMessage(reply);
  assert.is(
    writerBuffersMade(() => {
      for (let i = 0; i < 50; i++) encodeMessage({ ...reply, attrs: { objid: 1, dataRaw: encodeBlobmsgTable(data) } });
    }),
    0,
  );
});

test('a message is its own bytes: the next one written on the same buffer changes nothing in it', () => {
  const big = usageEvent(200);
  const small = usageEvent(1);
  // The reference is written on a new buffer: the kept ones are taken meanwhile.
  const taken = [BlobWriter.reusing(), BlobWriter.reusing()];
  const alone = Buffer.from(encodeMessage(small));
  for (const w of taken) w.finish();
  const first = encodeMessage(big);
  const copy = Buffer.from(first);
  const after = encodeMessage(small);
  assert.equal(Buffer.from(first), copy, 'the first message unchanged by the next');
  // Written where a longer message was: its padding is zeros again, the same bytes as before the longer one.
  assert.equal(Buffer.from(after), alone);
  assert.equal(decodeMessage(after).attrs.data, small.attrs.data);
});

test("a buffer past glibc's mmap threshold is not kept (freed, it is unmapped: the router has it back)", () => {
  const taken = [BlobWriter.reusing(), BlobWriter.reusing()];
  assert.is(BlobWriter.sparesKept(), 0);
  const huge: UbusMessage = {
    ...usageEvent(0),
    attrs: { objid: 1, method: 'send', data: { id: 'x'.repeat(SPARE_MAX_BYTES) } },
  };
  encodeMessage(huge);
  assert.is(BlobWriter.sparesKept(), 0);
  for (const w of taken) w.finish();
  assert.is(BlobWriter.sparesKept(), 2);
});

test.run();
