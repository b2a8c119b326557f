// tier: fast
// Reading a Disconnect/CoA request (src/radius/das.ts) without sockets or sessions: what it names, what it changes,
// and the NAKs it earns before any session is looked at.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  AttributeReader,
  dasAck,
  dasNak,
  encodeRequest,
  readDasRequest,
  type AttributeInput,
  type RadiusPacket,
} from '../../../src/radius/index.ts';
import { decodePacket } from '../../../src/radius/packet.ts';

const NAS = { identifier: 'router-test', ip: '192.0.2.1' };
const request = (code: 'Disconnect-Request' | 'CoA-Request', attributes: AttributeInput[]): RadiusPacket =>
  decodePacket(encodeRequest({ code, identifier: 7, attributes, secret: 's' }));

function nakOf(packet: RadiusPacket): [string, string, number | undefined] {
  const read = readDasRequest(packet, NAS);
  assert.ok('answer' in read, 'refused before any session is looked at');
  const reply = decodePacket(
    encodeRequest({ code: 'Disconnect-Request', identifier: 1, attributes: read.answer.attributes, secret: 's' }),
  );
  return [read.answer.code, read.answer.outcome, new AttributeReader(reply.attributes).integer('Error-Cause')];
}

test("a Disconnect names its sessions by every identifying attribute given; the MAC in sluice's form", () => {
  const read = readDasRequest(
    request('Disconnect-Request', [
      ['Acct-Session-Id', 'abc'],
      ['User-Name', 'alice'],
      ['Calling-Station-Id', '02-00-00-00-0A-01'],
      ['Framed-IP-Address', '192.168.1.20'],
      ['NAS-Identifier', 'router-test'],
    ]),
    NAS,
  );
  assert.ok('request' in read);
  const { disconnect, sessionId, user, mac, ip, limits, rates } = read.request;
  assert.equal(
    { disconnect, sessionId, user, mac, ip, limits, rates },
    {
      disconnect: true,
      sessionId: 'abc',
      user: 'alice',
      mac: '02:00:00:00:0a:01',
      ip: '192.168.1.20',
      limits: {},
      rates: false,
    },
  );
});

test('a CoA carries its new totals: Session-Timeout, and the smaller of the two byte limits', () => {
  const read = readDasRequest(
    request('CoA-Request', [
      ['User-Name', 'alice'],
      ['Session-Timeout', 600],
      ['ChilliSpot-Max-Total-Octets', 5000],
      ['Mikrotik-Total-Limit', 4000],
      ['Event-Timestamp', 1_700_000_000],
    ]),
    NAS,
  );
  assert.ok('request' in read);
  assert.equal(read.request.limits, { seconds: 600n, bytes: 4000n });
  const none = readDasRequest(
    request('CoA-Request', [
      ['User-Name', 'alice'],
      ['Event-Timestamp', 1_700_000_000],
    ]),
    NAS,
  );
  assert.ok('request' in none);
  assert.equal(
    [none.request.limits, none.request.rates],
    [{}, false],
    'no totals: Invalid-Request once a session matched',
  );
  const bad = readDasRequest(
    request('CoA-Request', [
      ['User-Name', 'alice'],
      ['Session-Timeout', Buffer.from([1, 2])],
      ['Event-Timestamp', 1_700_000_000],
    ]),
    NAS,
  );
  assert.ok('request' in bad);
  assert.is(bad.request.limits, null, 'a malformed total: Invalid-Request once a session matched');
});

test(
  'a CoA may carry a speed tier (WISPr-Bandwidth-Max-Down/-Up, Mikrotik-Rate-Limit): let through, for the caller ' +
    'to read',
  () => {
    for (const attrs of [
      [['WISPr-Bandwidth-Max-Down', 4_000_000]],
      [['WISPr-Bandwidth-Max-Up', 1_000_000]],
      [['Mikrotik-Rate-Limit', '1M/4M']],
    ] as AttributeInput[][]) {
      const read = readDasRequest(request('CoA-Request', [['Acct-Session-Id', 'abc'], ...attrs]), NAS);
      assert.ok('request' in read, JSON.stringify(attrs));
      assert.equal([read.request.rates, read.request.limits], [true, {}]);
    }
    const both = readDasRequest(
      request('CoA-Request', [
        ['Acct-Session-Id', 'abc'],
        ['Session-Timeout', 60],
        ['Mikrotik-Rate-Limit', '1M/4M'],
      ]),
      NAS,
    );
    assert.ok('request' in both);
    assert.equal([both.request.rates, both.request.limits], [true, { seconds: 60n }]);
    // A Disconnect sets nothing; CoovaChilli's own bandwidth attributes are not read (WISPr's are the ones it sends
    // too).
    assert.equal(
      nakOf(
        request('Disconnect-Request', [
          ['Acct-Session-Id', 'abc'],
          ['WISPr-Bandwidth-Max-Down', 4_000_000],
        ]),
      ),
      ['Disconnect-NAK', 'unsupported-attribute', 401],
    );
    assert.equal(
      nakOf(
        request('CoA-Request', [
          ['Acct-Session-Id', 'abc'],
          ['ChilliSpot-Bandwidth-Max-Down', 4_000_000],
        ]),
      ),
      ['CoA-NAK', 'unsupported-attribute', 401],
    );
  },
);

test('the NAKs given before any session is looked at, with their Error-Cause', () => {
  assert.equal(nakOf(request('Disconnect-Request', [['NAS-Identifier', 'router-test']])), [
    'Disconnect-NAK',
    'missing-attribute',
    402,
  ]);
  assert.equal(
    nakOf(
      request('Disconnect-Request', [
        ['User-Name', 'a'],
        ['NAS-Identifier', 'other'],
      ]),
    ),
    ['Disconnect-NAK', 'nas-mismatch', 403],
  );
  assert.equal(
    nakOf(
      request('Disconnect-Request', [
        ['User-Name', 'a'],
        ['NAS-IP-Address', '192.0.2.9'],
      ]),
    ),
    ['Disconnect-NAK', 'nas-mismatch', 403],
  );
  assert.equal(
    nakOf(
      request('Disconnect-Request', [
        ['User-Name', 'a'],
        ['Session-Timeout', 60],
      ]),
    ),
    ['Disconnect-NAK', 'unsupported-attribute', 401],
  );
  assert.equal(
    nakOf(
      request('CoA-Request', [
        ['User-Name', 'a'],
        ['Service-Type', 17],
      ]),
    ),
    ['CoA-NAK', 'unsupported-service', 405],
  );
  assert.equal(
    nakOf(
      request('CoA-Request', [
        ['Calling-Station-Id', 'not a mac'],
        ['Event-Timestamp', 1_700_000_000],
      ]),
    ),
    ['CoA-NAK', 'not-found', 503],
  );
});

test(
  'replay guard: a request naming its session by MAC, user or IP without Event-Timestamp is refused (402); ' +
    'Acct-Session-Id binds it alone',
  () => {
    assert.equal(nakOf(request('Disconnect-Request', [['Calling-Station-Id', '02-00-00-00-0A-01']])), [
      'Disconnect-NAK',
      'missing-attribute',
      402,
    ]);
    assert.equal(
      nakOf(
        request('CoA-Request', [
          ['User-Name', 'alice'],
          ['Session-Timeout', 60],
        ]),
      ),
      ['CoA-NAK', 'missing-attribute', 402],
    );
    assert.equal(nakOf(request('Disconnect-Request', [['Framed-IP-Address', '192.168.1.20']])), [
      'Disconnect-NAK',
      'missing-attribute',
      402,
    ]);
    const bound = readDasRequest(
      request('Disconnect-Request', [
        ['Acct-Session-Id', 'abc'],
        ['Calling-Station-Id', '02-00-00-00-0A-01'],
      ]),
      NAS,
    );
    assert.ok('request' in bound);
    assert.is(bound.request.eventTimestamp, undefined);
    const timed = readDasRequest(
      request('Disconnect-Request', [
        ['Calling-Station-Id', '02-00-00-00-0A-01'],
        ['Event-Timestamp', 1_700_000_000],
      ]),
      NAS,
    );
    assert.ok('request' in timed);
    assert.is(timed.request.eventTimestamp, 1_700_000_000);
  },
);

test("ACK and NAK follow the request's kind", () => {
  const coa = request('CoA-Request', [['User-Name', 'a']]);
  assert.equal(dasAck(coa, 'changed', ['s1']), {
    code: 'CoA-ACK',
    attributes: [],
    outcome: 'changed',
    sessions: ['s1'],
  });
  assert.is(
    dasNak(request('Disconnect-Request', [['User-Name', 'a']]), 'Resources-Unavailable', 'failed').code,
    'Disconnect-NAK',
  );
});

test.run();
