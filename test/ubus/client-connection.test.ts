// tier: fast
// Connection edge cases that a well-behaved broker never produces, so a raw socket server plays ubusd here.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MsgType, Status, decodeMessage, encodeMessage } from '../../src/ubus/codec/index.ts';
import { UbusConnection } from '../../src/ubus/connection.ts';
import { UbusClient } from '../../src/ubus/index.ts';
import { rejects, waitFor } from './client-bus.ts';

async function fakeUbusd(
  onData: (sock: Socket, frame: Buffer) => void,
  hello = true,
): Promise<{ path: string; server: Server; done(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-ubus-fake-'));
  const path = join(dir, 'ubus.sock');
  const sockets = new Set<Socket>();
  const server = createServer((sock) => {
    sockets.add(sock);
    if (hello) sock.write(encodeMessage({ type: MsgType.HELLO, seq: 0, peer: 0x12345678, attrs: {} }));
    sock.on('data', (d: Buffer) => onData(sock, d));
    sock.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(path, r));
  return {
    path,
    server,
    async done() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

test('an oversized frame header from the broker closes the connection; pending calls fail', async () => {
  const fake = await fakeUbusd((sock) => {
    // Claims a 2 MiB body: more than UBUS_MAX_MSGLEN, so the client must not wait for it.
    sock.write(Buffer.from('0002000100000000' + '00200004', 'hex'));
  });
  try {
    const c = await UbusClient.connect({ socketPath: fake.path, timeoutMs: 30_000 });
    assert.is(c.clientId, 0x12345678);
    await rejects(c.ping(), (e) => e.code === 'ERR_UBUS_DISCONNECTED');
    await waitFor(() => c.state === 'closed', 'closed');
  } finally {
    await fake.done();
  }
});

test('no HELLO → ERR_UBUS_CONNECT after the connect timeout', async () => {
  const fake = await fakeUbusd(() => undefined, false);
  try {
    await rejects(UbusClient.connect({ socketPath: fake.path, timeoutMs: 50 }), (e) => e.code === 'ERR_UBUS_CONNECT');
  } finally {
    await fake.done();
  }
});

test('replies are matched on (seq, peer); frames split at any byte still parse', async () => {
  const fake = await fakeUbusd((sock, d) => {
    const req = decodeMessage(d);
    // Answer with the right seq but a wrong peer first (must be ignored), then the real reply byte by byte.
    sock.write(
      encodeMessage({ type: MsgType.STATUS, seq: req.seq, peer: req.peer + 1, attrs: { status: Status.NOT_FOUND } }),
    );
    const reply = Buffer.concat([
      encodeMessage({
        type: MsgType.DATA,
        seq: req.seq,
        peer: req.peer,
        attrs: { objid: req.peer, data: { ok: true } },
      }),
      encodeMessage({ type: MsgType.STATUS, seq: req.seq, peer: req.peer, attrs: { status: 0, objid: req.peer } }),
    ]);
    let i = 0;
    const drip = (): void => {
      if (i < reply.length) sock.write(reply.subarray(i, ++i), drip);
    };
    drip();
  });
  try {
    const c = await UbusClient.connect({ socketPath: fake.path, timeoutMs: 5000 });
    assert.equal(await c.call(0x5000, 'm', { a: 1 }), { ok: true });
    c.destroy();
  } finally {
    await fake.done();
  }
});

test('seq is a u16 that starts at 1, wraps to 1 (never 0) and skips pairs still pending', async () => {
  const fake = await fakeUbusd(() => undefined);
  try {
    const conn = await UbusConnection.open({
      socketPath: fake.path,
      connectTimeoutMs: 1000,
      onObjectMessage: () => undefined,
      onClose: () => undefined,
    });
    const seen: number[] = [];
    for (let i = 0; i < 65537; i++) seen.push(conn.nextSeq(7));
    assert.equal(seen.slice(0, 3), [1, 2, 3]);
    assert.is(seen[65534], 65535);
    assert.is(seen[65535], 1);
    assert.ok(!seen.includes(0));
    // A pending (seq, peer) is skipped for that peer only.
    const pending = conn.request(MsgType.PING, 0, {}, 0, 'ping').catch(() => undefined);
    const pendingSeq = seen[65536]! + 1;
    const forPeer0: number[] = [];
    for (let i = 0; i < 65534; i++) forPeer0.push(conn.nextSeq(0));
    assert.ok(!forPeer0.includes(pendingSeq));
    assert.is(new Set(forPeer0).size, 65534);
    const forPeer5: number[] = [];
    for (let i = 0; i < 65535; i++) forPeer5.push(conn.nextSeq(5));
    assert.ok(forPeer5.includes(pendingSeq));
    conn.destroy();
    await pending;
  } finally {
    await fake.done();
  }
});

test.run();
