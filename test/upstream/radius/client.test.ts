// tier: daemon
// The UDP client's retransmission rules, against a scripted UDP peer (FreeRADIUS cannot be told to drop the first
// attempts): a new Identifier and an updated Acct-Delay-Time per attempt, a late reply to an earlier attempt completes
// the request, replies from elsewhere or badly signed are refused, in-flight stays bounded.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createSocket, type Socket } from 'node:dgram';
import { RadiusClient } from '../../../src/radius/client.ts';
import {
  AttributeReader,
  decodePacket,
  encodeRequest,
  encodeResponse,
  verifyRequest,
  type RadiusPacket,
} from '../../../src/radius/packet.ts';
import { rejectsWithCode } from '../../helpers/assert.ts';

const SECRET = 'scripted';

/**
 * A UDP peer that verifies each Accounting-Request like FreeRADIUS and lets the test decide what to answer: a packet,
 * nothing, 'later' (when the test says), or a number: the right reply after that many ms.
 */
async function peer(
  answer: (p: RadiusPacket, n: number, reply: (secret?: string) => Buffer) => Buffer | null | 'later' | number,
): Promise<{ socket: Socket; port: number; seen: RadiusPacket[]; later: Array<() => void> }> {
  const socket = createSocket('udp4');
  const seen: RadiusPacket[] = [];
  const later: Array<() => void> = [];
  socket.on('message', (msg, rinfo) => {
    const p = decodePacket(msg);
    if (!verifyRequest(p, SECRET).ok) return;
    seen.push(p);
    const reply = (secret = SECRET) =>
      encodeResponse({ code: 'Accounting-Response', request: p, attributes: [], secret });
    const out = answer(p, seen.length, reply);
    if (out === 'later') later.push(() => socket.send(reply(), rinfo.port, rinfo.address));
    else if (typeof out === 'number') {
      setTimeout(() => {
        try {
          socket.send(reply(), rinfo.port, rinfo.address);
        } catch {
          /* the test is over: socket closed */
        }
      }, out);
    } else if (out) socket.send(out, rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
  return { socket, port: socket.address().port, seen, later };
}

const at = Date.now() - 2000;
const build =
  (delayFrom: number) =>
  ({ identifier, server }: { identifier: number; server: { secret: string } }) =>
    encodeRequest({
      code: 'Accounting-Request',
      identifier,
      secret: server.secret,
      messageAuthenticator: false,
      attributes: [
        ['Acct-Status-Type', 'Stop'],
        ['Acct-Session-Id', 'abc'],
        ['Acct-Delay-Time', Math.floor((Date.now() - delayFrom) / 1000)],
      ],
    });

test('each retry is a new packet: new Identifier, Acct-Delay-Time brought up to date', async () => {
  const p = await peer((_, n, reply) => (n < 3 ? null : reply()));
  const client = new RadiusClient({
    servers: [{ host: '127.0.0.1', port: p.port, secret: SECRET }],
    timeoutMs: 400,
    retries: 3,
  });
  try {
    const reply = await client.request(build(at));
    assert.is(reply.code, 5);
    assert.is(p.seen.length, 3);
    assert.is(new Set(p.seen.map((s) => s.identifier)).size, 3, 'three Identifiers');
    const delays = p.seen.map((s) => new AttributeReader(s.attributes).integer('Acct-Delay-Time')!);
    assert.ok(delays[2]! > delays[0]!, `Acct-Delay-Time grows: ${delays.join(',')}`);
    assert.equal(client.stats().retransmits, 2);
  } finally {
    await client.close();
    p.socket.close();
  }
});

test(
  'a late reply to the first attempt completes the ' + 'request; a reply signed with another secret does not',
  async () => {
    const p = await peer((_, n, reply) => (n === 1 ? 'later' : reply('not-the-secret')));
    const client = new RadiusClient({
      servers: [{ host: '127.0.0.1', port: p.port, secret: SECRET }],
      timeoutMs: 300,
      retries: 4,
    });
    try {
      const pending = client.request(build(at));
      await new Promise((r) => setTimeout(r, 800));
      assert.ok(client.stats().dropped >= 1, 'the badly signed replies were dropped');
      p.later[0]!();
      const reply = await pending;
      assert.is(reply.identifier, p.seen[0]!.identifier, 'answered by the reply to attempt 1');
    } finally {
      await client.close();
      p.socket.close();
    }
  },
);

test(
  'a server measured slower than the timeout is given its ' + 'usual answer time before a retry: no second packet',
  async () => {
    // Answers every attempt 300 ms late (a loaded server): with a fixed 100 ms timeout each request would be sent 2-3
    // times, and a real FreeRADIUS would record every copy.
    const p = await peer(() => 300);
    const client = new RadiusClient({
      servers: [{ host: '127.0.0.1', port: p.port, secret: SECRET }],
      timeoutMs: 100,
      retries: 5,
    });
    try {
      await client.request(build(at));
      assert.ok(client.stats().retransmits >= 1, 'the first request, before any measurement, was retried');
      assert.ok(client.stats().srttMs! >= 300, `measured ${client.stats().srttMs} ms`);
      assert.ok(client.stats().timeoutMs >= 600, `timeout now ${client.stats().timeoutMs} ms`);
      // Counted at the client: the first request's last retries may still be on their way to the peer.
      const before = { sent: client.stats().sent, retransmits: client.stats().retransmits };
      for (let i = 0; i < 5; i++) await client.request(build(at));
      assert.is(client.stats().sent - before.sent, 5, 'one packet per request');
      assert.is(client.stats().retransmits, before.retransmits);
    } finally {
      await client.close();
      p.socket.close();
    }
  },
);

test('in-flight is bounded; a silent server ends in ERR_UPSTREAM_UNAVAILABLE for every request', async () => {
  const p = await peer(() => null);
  const client = new RadiusClient({
    servers: [{ host: '127.0.0.1', port: p.port, secret: SECRET }],
    timeoutMs: 150,
    retries: 1,
    maxInFlight: 2,
  });
  try {
    const all = Array.from({ length: 5 }, () => client.request(build(at)));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal([client.stats().inFlight, client.stats().queued], [2, 3]);
    for (const r of all) await rejectsWithCode(r, 'ERR_UPSTREAM_UNAVAILABLE');
    assert.is(p.seen.length, 10, '5 requests × 2 attempts');
  } finally {
    await client.close();
    p.socket.close();
  }
});

test.run();
