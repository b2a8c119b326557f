// tier: fast
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import {
  AttributeReader,
  decodePacket,
  decryptPassword,
  encodeRequest,
  encodeResponse,
  RadiusPacketError,
  splitOctets,
  verifyRequest,
  verifyResponse,
} from '../../../src/radius/packet.ts';

const require = createRequire(import.meta.url);
// The `radius` package is the reference for encoding (its verification is not trusted: see docs/radius.md).
const radius = require('radius') as {
  add_dictionary(p: string): void;
  unload_dictionaries(): void;
  encode(a: object): Buffer;
  decode(a: object): { code: string; attributes: Record<string, unknown> };
  attr_name_to_id(name: string, vendor?: number): string | undefined;
};
const SECRET = 'testing123';

test('an Accounting-Request encodes byte for byte like the radius package and verifies', () => {
  const attributes = [
    ['User-Name', 'alice'],
    ['Acct-Status-Type', 'Start'],
    ['Acct-Session-Id', '0123456789abcdef'],
    ['NAS-IP-Address', '10.0.0.1'],
    ['Acct-Delay-Time', 3],
    ['NAS-Port-Type', 'Wireless-802.11'],
  ] as const;
  const mine = encodeRequest({
    code: 'Accounting-Request',
    identifier: 7,
    attributes,
    secret: SECRET,
    messageAuthenticator: false,
  });
  const theirs = radius.encode({
    code: 'Accounting-Request',
    identifier: 7,
    attributes: attributes.map((a) => [...a]),
    secret: SECRET,
  });
  assert.equal(mine.toString('hex'), theirs.toString('hex'));
  const p = decodePacket(mine);
  assert.equal(verifyRequest(p, SECRET), { ok: true, messageAuthenticator: false });
  assert.equal(verifyRequest(p, 'wrong').ok, false);
});

test(
  'Message-Authenticator on Accounting/CoA/Disconnect requests is signed over the zeroed authenticator (RFC 5176 ' +
    '3.5)',
  () => {
    for (const code of ['Accounting-Request', 'CoA-Request', 'Disconnect-Request'] as const) {
      const packet = encodeRequest({
        code,
        identifier: 1,
        attributes: [['User-Name', 'bob']],
        secret: SECRET,
        messageAuthenticator: true,
      });
      assert.equal(verifyRequest(decodePacket(packet), SECRET), { ok: true, messageAuthenticator: true }, code);
      for (let i = 0; i < packet.length; i++) {
        const bad = Buffer.from(packet);
        bad[i]! ^= 0x40;
        if (i === 2 || i === 3) continue; // the length field: undecodable, covered below
        let ok = false;
        try {
          ok = verifyRequest(decodePacket(bad), SECRET).ok;
        } catch (err) {
          assert.instance(err, RadiusPacketError);
        }
        assert.not.ok(ok, `${code}: byte ${i} flipped still verifies`);
      }
    }
  },
);

test('responses: any altered byte is refused, Message-Authenticator in replies checked', () => {
  const request = encodeRequest({
    code: 'Access-Request',
    identifier: 9,
    attributes: [['User-Name', 'testuser']],
    secret: SECRET,
    password: 'testpass',
  });
  const req = decodePacket(request);
  for (const withMa of [false, true]) {
    const reply = encodeResponse({
      code: 'Access-Accept',
      request: req,
      secret: SECRET,
      messageAuthenticator: withMa,
      attributes: [
        ['Session-Timeout', 3600],
        ['Reply-Message', 'Welcome'],
      ],
    });
    assert.ok(verifyResponse(decodePacket(reply), request, SECRET).ok);
    let refused = 0;
    for (let i = 0; i < reply.length; i++) {
      if (i === 2 || i === 3) continue;
      const bad = Buffer.from(reply);
      bad[i]! ^= 0x01;
      let ok = true;
      try {
        ok = verifyResponse(decodePacket(bad), request, SECRET).ok;
      } catch {
        ok = false;
      }
      if (!ok) refused++;
    }
    assert.is(refused, reply.length - 2);
  }
});

test('PAP password round trip (long passwords too)', () => {
  for (const pw of ['x', 'testpass', 'a'.repeat(16), 'ü'.repeat(40)]) {
    const packet = encodeRequest({
      code: 'Access-Request',
      identifier: 1,
      attributes: [['User-Name', 'u']],
      secret: SECRET,
      password: pw,
    });
    const p = decodePacket(packet);
    const hidden = p.attributes.find((a) => a.type === 2)!.value;
    assert.is(decryptPassword(hidden, Buffer.from(SECRET), p.authenticator), pw);
    // The radius package decodes what we encode.
    const theirs = radius.decode({ packet, secret: SECRET });
    assert.is(theirs.attributes['User-Password'], pw);
  }
});

test('vendor attributes, gigawords and IPv6 encode and decode', () => {
  const packet = encodeRequest({
    code: 'CoA-Request',
    identifier: 3,
    secret: SECRET,
    attributes: [
      ['ChilliSpot-Max-Total-Octets', 1073741824],
      ['ChilliSpot-Max-Total-Gigawords', 1],
      ['Mikrotik-Total-Limit', 5],
      ['NAS-IPv6-Address', '2001:db8::1'],
      ['Framed-IP-Address', '192.168.1.20'],
    ],
  });
  const r = new AttributeReader(decodePacket(packet).attributes);
  assert.is(r.octets('ChilliSpot-Max-Total-Octets', 'ChilliSpot-Max-Total-Gigawords'), 5n * 1024n ** 3n);
  assert.is(r.integer('Mikrotik-Total-Limit'), 5);
  assert.is(r.ipaddr('Framed-IP-Address'), '192.168.1.20');
  assert.is(r.all('NAS-IPv6-Address')[0]!.toString('hex'), '20010db8000000000000000000000001');
  assert.equal(splitOctets(5n * 2n ** 32n + 7n), [7, 5]);
});

test('garbage never throws anything but RadiusPacketError', () => {
  let decoded = 0;
  const seed = encodeRequest({
    code: 'Disconnect-Request',
    identifier: 1,
    attributes: [
      ['User-Name', 'x'],
      ['Acct-Session-Id', 'abc'],
    ],
    secret: SECRET,
  });
  // The random packets' bytes drawn at once: a call into the random source per packet cost as much as its decoding.
  const noise = randomBytes(10000 * 32);
  for (let i = 0, at = 0; i < 20000; i++) {
    let buf: Buffer;
    if (i % 2 === 0) {
      buf = Buffer.from(noise.subarray(at, at + (i % 64)));
      at += i % 64;
    } else {
      buf = Buffer.from(seed);
      for (let k = 0; k < 3; k++) buf[Math.floor(Math.random() * buf.length)] = Math.floor(Math.random() * 256);
    }
    try {
      const p = decodePacket(buf);
      verifyRequest(p, SECRET);
      const r = new AttributeReader(p.attributes);
      try {
        r.integer('Session-Timeout');
        r.string('User-Name');
        r.ipaddr('Framed-IP-Address');
      } catch (err) {
        assert.instance(err, RadiusPacketError);
      }
      decoded++;
    } catch (err) {
      assert.instance(err, RadiusPacketError);
    }
  }
  assert.ok(decoded > 0);
});

test.run();
