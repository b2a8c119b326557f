// tier: fast
// The encoder keeps each blobmsg name's wire header and copies it after (ubus/codec/blobmsg.ts): a daemon's replies
// and events repeat the same names in every message, and the first burst of them runs before V8 optimized the code.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  decodeBlobmsgNodes,
  decodeBlobmsgTable,
  encodeBlobmsgNodes,
  encodeBlobmsgTable,
  type BlobmsgTable,
} from '../../src/ubus/codec/index.ts';

const reply: BlobmsgTable = {
  session: { id: '0123456789abcdef', mac: '02:00:00:00:4e:01', used: '0', started_at: 1795980350, ip: null },
  topped_up: false,
  gate: 'opened',
};

/** How often Buffer.byteLength measured a string while `run` ran. */
function measured(run: () => void): number {
  const real = Buffer.byteLength;
  let calls = 0;
  Buffer.byteLength = ((...args: Parameters<typeof real>) => {
    calls++;
    return real(...args);
  }) as typeof real;
  try {
    run();
  } finally {
    Buffer.byteLength = real;
  }
  return calls;
}

test("a table's names are encoded once: the same table again measures none of its names", () => {
  const first = encodeBlobmsgTable(reply);
  assert.is(
    measured(() => encodeBlobmsgTable(reply)),
    0,
  );
  assert.equal(encodeBlobmsgTable(reply), first, 'the same bytes');
  // The node encoder (another path to the same bytes) agrees, and they decode back.
  assert.equal(Buffer.from(first), Buffer.from(encodeBlobmsgNodes(decodeBlobmsgNodes(first))));
  assert.equal(decodeBlobmsgTable(first), reply);
});

test('names past what is kept are encoded each time, the same; odd names keep their padding', () => {
  const many: BlobmsgTable = {};
  for (let i = 0; i < 3000; i++) many[`name-${i}`] = i;
  const odd: BlobmsgTable = { '': 'empty name', a: 1, ab: 2, abc: 3, abcd: 4, é: 'two bytes', 名前: 'three' };
  for (const table of [many, odd, many, odd]) {
    const bytes = encodeBlobmsgTable(table);
    assert.equal(decodeBlobmsgTable(bytes), table);
    assert.equal(Buffer.from(bytes), Buffer.from(encodeBlobmsgNodes(decodeBlobmsgNodes(bytes))));
  }
});

test.run();
