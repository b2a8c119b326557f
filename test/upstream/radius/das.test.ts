// tier: peers; needs radclient
// The Disconnect/CoA server against radclient (freeradius-utils), with real sessions (SessionManager on a memory
// store).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createSocket } from 'node:dgram';
import { SessionManager } from '../../../src/sessions/manager.ts';
import { MemoryStore } from '../../../src/sessions/memory-store.ts';
import type { Session } from '../../../src/sessions/model.ts';
import { DasServer } from '../../../src/radius/das-server.ts';
import { answerDas, type DasContext } from '../../../src/upstream/radius/das.ts';
import type { RateChange } from '../../../src/upstream/radius/coa-rates.ts';
import { decodePacket, encodeRequest, AttributeReader, CODE, MAX_OCTET_LIMIT } from '../../../src/radius/packet.ts';
import { radclient } from '../../peers/freeradius.ts';

const SECRET = 'das-secret';
interface Ctx {
  sessions: SessionManager;
  das: DasServer;
  closed: string[];
  setLimitsCalls: number;
  /** The rate-change path as the DAS calls it (in the daemon: ubus `change`), and the shaper's state it reads. */
  rateCalls: Array<[string, RateChange]>;
  shaperUsable: boolean;
  shaperFailsOnChange: boolean;
}
const t = suite<Ctx>('das', {} as Ctx);

let n = 0;
const mac = () => `02:00:00:00:0a:${(++n).toString(16).padStart(2, '0')}`;
async function buy(
  c: Ctx,
  metric: 'seconds' | 'bytes',
  allotment: bigint,
  user?: string,
  ip?: string,
): Promise<Session> {
  const { session } = await c.sessions.activate({
    mac: mac(),
    metric,
    allotment,
    payment: { method: 't', reference: `r${n}`, amount: 0n, asset: '', at: Date.now() },
    ...(user !== undefined && { user }),
    ...(ip !== undefined && { ip }),
  });
  return session;
}

function dasContext(c: Ctx): DasContext {
  const sessions = c.sessions;
  return {
    sessions: {
      get: (id) => sessions.get(id),
      byMac: (m) => sessions.byMac(m),
      list: (f) => sessions.list(f),
      end: (id, cause) => sessions.end(id, cause),
      setLimits: (id, change) => {
        c.setLimitsCalls++;
        return sessions.setLimits(id, change);
      },
    },
    userNameOf: (s) => s.user ?? s.mac.toUpperCase().replace(/:/g, '-'),
    nasIdentifier: 'router-test',
    nasIp: '127.0.0.1',
    closeGates: async (ended) => {
      c.closed.push(...ended.map((s) => s.mac));
    },
    rates: {
      usable: () => c.shaperUsable,
      change: async (s, change) => {
        c.rateCalls.push([s.id, change]);
        // tc refused and the rebuild too: the shaper turns itself off (portal/shaper.ts), it never throws.
        if (c.shaperFailsOnChange) c.shaperUsable = false;
      },
    },
  };
}

t.before.each(async (c) => {
  c.sessions = await SessionManager.open({ store: new MemoryStore() });
  c.closed = [];
  c.setLimitsCalls = 0;
  c.rateCalls = [];
  c.shaperUsable = true;
  c.shaperFailsOnChange = false;
  const ctx = dasContext(c);
  c.das = await DasServer.start({
    port: 0,
    host: '127.0.0.1',
    clients: [{ address: '127.0.0.1', secret: SECRET }],
    answer: (request) => answerDas(request, ctx),
  });
});
t.after.each(async (c) => {
  await c.das.close();
  await c.sessions.close();
});

const target = (c: Ctx) => `127.0.0.1:${c.das.port}`;
/** Requests naming a session by MAC, user or IP carry Event-Timestamp (unbound ones are refused: a replay guard). */
const nowS = (): number => Math.floor(Date.now() / 1000);
const now = (): string => `Event-Timestamp = ${nowS()}`;

t('Disconnect by Acct-Session-Id + User-Name: ACK, session ended as disconnect, gate closed first', async (c) => {
  const s = await buy(c, 'seconds', 3600n, 'testuser');
  const r = await radclient(target(c), 'disconnect', SECRET, `Acct-Session-Id="${s.id}", User-Name="testuser"`);
  assert.is(r.code, 0, r.output);
  assert.match(r.output, /Received Disconnect-ACK/);
  const ended = c.sessions.get(s.id)!;
  assert.equal([ended.state, ended.endCause], ['TERMINATED', 'disconnect']);
  assert.equal(c.closed, [s.mac]);
});

t(
  'Disconnect by Calling-Station-Id (RFC 3580 form) and by Framed-IP-Address, signed with Message-Authenticator',
  async (c) => {
    const a = await buy(c, 'seconds', 3600n);
    const b = await buy(c, 'bytes', 10n ** 9n, undefined, '192.168.9.20');
    let r = await radclient(
      target(c),
      'disconnect',
      SECRET,
      `Calling-Station-Id="${a.mac.toUpperCase().replace(/:/g, '-')}", ${now()}, Message-Authenticator=0x00`,
    );
    assert.match(r.output, /Received Disconnect-ACK/);
    r = await radclient(target(c), 'disconnect', SECRET, `Framed-IP-Address=192.168.9.20, ${now()}`);
    assert.match(r.output, /Received Disconnect-ACK/);
    assert.equal([c.sessions.get(a.id)!.endCause, c.sessions.get(b.id)!.endCause], ['disconnect', 'disconnect']);
  },
);

t(
  'NAK 503 when nothing matches (all given attributes must match), NAK 402 without an identifying attribute',
  async (c) => {
    const s = await buy(c, 'seconds', 3600n, 'alice');
    let r = await radclient(target(c), 'disconnect', SECRET, `Acct-Session-Id="${s.id}", User-Name="bob"`);
    assert.is(r.code, 1);
    assert.match(r.output, /Received Disconnect-NAK[\s\S]*Error-Cause = Session-Context-Not-Found/);
    r = await radclient(target(c), 'disconnect', SECRET, `Event-Timestamp = ${Math.floor(Date.now() / 1000)}`);
    assert.match(r.output, /Error-Cause = Missing-Attribute/);
    r = await radclient(target(c), 'disconnect', SECRET, 'User-Name="alice", NAS-Identifier="another-router"');
    assert.match(r.output, /Error-Cause = NAS-Identification-Mismatch/);
    assert.is(c.sessions.get(s.id)!.state, 'ACTIVE');
  },
);

t('a wrong secret or an unknown client is ignored silently (no reply), counted', async (c) => {
  const s = await buy(c, 'seconds', 3600n, 'alice');
  const r = await radclient(target(c), 'disconnect', 'not-the-secret', 'User-Name="alice"', {
    timeoutS: 1,
    retries: 1,
  });
  assert.is(r.code, 1);
  assert.match(r.output, /No reply from server/);
  assert.is(c.sessions.get(s.id)!.state, 'ACTIVE');
  assert.ok(c.das.stats().droppedBadAuthenticator >= 1);
});

t(
  'CoA shortening a time session ends it at the new limit; lengthening moves the deadline; bytes on a data session',
  async (c) => {
    const s = await buy(c, 'seconds', 3600n, 'carol');
    let r = await radclient(target(c), 'coa', SECRET, `User-Name="carol", Session-Timeout=7200, ${now()}`);
    assert.match(r.output, /Received CoA-ACK/);
    assert.is(c.sessions.get(s.id)!.expiresAt, s.startedAt! + 7200_000);
    r = await radclient(target(c), 'coa', SECRET, `Acct-Session-Id="${s.id}", Session-Timeout=2`);
    assert.match(r.output, /Received CoA-ACK/);
    await new Promise((res) => setTimeout(res, 2500));
    assert.equal([c.sessions.get(s.id)!.state, c.sessions.get(s.id)!.endCause], ['EXPIRED', 'time-limit']);
    const d = await buy(c, 'bytes', 10n ** 9n, 'dave');
    r = await radclient(
      target(c),
      'coa',
      SECRET,
      `User-Name="dave", ChilliSpot-Max-Total-Octets=1073741824, ChilliSpot-Max-Total-Gigawords=1, ${now()}`,
    );
    assert.match(r.output, /Received CoA-ACK/, r.output);
    assert.is(c.sessions.get(d.id)!.allotment, 5n * 1024n ** 3n);
  },
);

t(
  'CoA NAKs: unsupported attribute 401, Authorize-Only 405, bytes for a time session 401, nothing to change 404',
  async (c) => {
    await buy(c, 'seconds', 3600n, 'erin');
    let r = await radclient(target(c), 'coa', SECRET, `User-Name="erin", Filter-Id="gold", ${now()}`);
    assert.match(r.output, /Received CoA-NAK[\s\S]*Unsupported-Attribute/);
    r = await radclient(target(c), 'coa', SECRET, `User-Name="erin", Service-Type=Authorize-Only, ${now()}`);
    assert.match(r.output, /Received CoA-NAK[\s\S]*Unsupported-Service/);
    r = await radclient(target(c), 'coa', SECRET, `User-Name="erin", Mikrotik-Total-Limit=1000, ${now()}`);
    assert.match(r.output, /Received CoA-NAK[\s\S]*Unsupported-Attribute/);
    r = await radclient(target(c), 'coa', SECRET, `User-Name="erin", ${now()}`);
    assert.match(r.output, /Received CoA-NAK[\s\S]*Invalid-Request/, 'nothing to change: 404');
    assert.is(c.setLimitsCalls, 0);
  },
);

t(
  'CoA with WISPr-Bandwidth-Max-Down/-Up or Mikrotik-Rate-Limit: new rates by the change path, no deauth; with ' +
    'totals, both',
  async (c) => {
    const s = await buy(c, 'seconds', 3600n, 'rita');
    let r = await radclient(
      target(c),
      'coa',
      SECRET,
      `Acct-Session-Id="${s.id}", WISPr-Bandwidth-Max-Down=4000000, WISPr-Bandwidth-Max-Up=1000000`,
    );
    assert.match(r.output, /Received CoA-ACK/, r.output);
    r = await radclient(
      target(c),
      'coa',
      SECRET,
      `User-Name="rita", Mikrotik-Rate-Limit="512k/2M", Session-Timeout=7200, ${now()}`,
    );
    assert.match(r.output, /Received CoA-ACK/, r.output);
    assert.equal(c.rateCalls, [
      [s.id, { downBps: 4_000_000, upBps: 1_000_000 }],
      [s.id, { upBps: 512_000, downBps: 2_000_000 }],
    ]);
    assert.equal(
      [c.sessions.get(s.id)!.state, c.sessions.get(s.id)!.expiresAt, c.closed],
      ['ACTIVE', s.startedAt! + 7200_000, []],
    );
    // MikroTik's 0 alone ("no limit", both directions: tx is rx): the tier lifted, not a CoA with nothing to change.
    r = await radclient(target(c), 'coa', SECRET, `Acct-Session-Id="${s.id}", Mikrotik-Rate-Limit="0"`);
    assert.match(r.output, /Received CoA-ACK/, r.output);
    assert.equal(c.rateCalls.at(-1), [s.id, { upBps: null, downBps: null }]);
  },
);

t(
  'CoA rates refused whole: a bad rate beside a good total 404, unknown session 503, CoovaChilli bandwidth 401',
  async (c) => {
    const s = await buy(c, 'seconds', 3600n, 'sam');
    const nak = async (attrs: string, cause: string) => {
      const r = await radclient(target(c), 'coa', SECRET, attrs);
      assert.match(r.output, new RegExp(`Received CoA-NAK[\\s\\S]*Error-Cause = ${cause}`), `${attrs}: ${r.output}`);
    };
    await nak(`Acct-Session-Id="${s.id}", Session-Timeout=7200, WISPr-Bandwidth-Max-Down=100`, 'Invalid-Request');
    await nak(`Acct-Session-Id="${s.id}", Session-Timeout=7200, Mikrotik-Rate-Limit="fast"`, 'Invalid-Request');
    await nak(`Acct-Session-Id="${s.id}", Mikrotik-Rate-Limit="1M/4M", WISPr-Bandwidth-Max-Up=1`, 'Invalid-Request');
    await nak(`Acct-Session-Id="no-such-session", WISPr-Bandwidth-Max-Down=4000000`, 'Session-Context-Not-Found');
    await nak(
      `Acct-Session-Id="${s.id}", Session-Timeout=7200, ChilliSpot-Bandwidth-Max-Down=4000`,
      'Unsupported-Attribute',
    );
    assert.equal(
      [c.rateCalls, c.setLimitsCalls, c.sessions.get(s.id)!.expiresAt],
      [[], 0, s.expiresAt],
      'nothing half-applied',
    );
    // The log line of the NAK says which value and why (the outcome alone would not).
    const answer = await answerDas(
      decodePacket(
        encodeRequest({
          code: 'CoA-Request',
          identifier: 9,
          secret: SECRET,
          attributes: [
            ['Acct-Session-Id', s.id],
            ['WISPr-Bandwidth-Max-Down', 100],
          ],
        }),
      ),
      dasContext(c),
    );
    assert.equal([answer.code, answer.outcome], ['CoA-NAK', 'invalid-request']);
    assert.match(answer.reason ?? '', /^rate refused: WISPr-Bandwidth-Max-Down 100 /);
  },
);

t('CoA rates on a router that cannot shape: 506 Resources-Unavailable, and its totals left as they were', async (c) => {
  const s = await buy(c, 'seconds', 3600n, 'tess');
  // The shaper off (tc or nft refused at its start): refused before anything changes.
  c.shaperUsable = false;
  let r = await radclient(
    target(c),
    'coa',
    SECRET,
    `Acct-Session-Id="${s.id}", Session-Timeout=7200, WISPr-Bandwidth-Max-Down=4000000`,
  );
  assert.match(r.output, /Received CoA-NAK[\s\S]*Error-Cause = Resources-Unavailable/, r.output);
  assert.equal([c.rateCalls, c.setLimitsCalls], [[], 0]);
  // The kernel refusing this very change: the rates are not in force, so the totals do not move either.
  c.shaperUsable = true;
  c.shaperFailsOnChange = true;
  r = await radclient(
    target(c),
    'coa',
    SECRET,
    `Acct-Session-Id="${s.id}", Session-Timeout=7200, WISPr-Bandwidth-Max-Down=4000000`,
  );
  assert.match(r.output, /Received CoA-NAK[\s\S]*Error-Cause = Resources-Unavailable/, r.output);
  assert.equal([c.rateCalls.length, c.setLimitsCalls, c.sessions.get(s.id)!.expiresAt], [1, 0, s.expiresAt]);
  // Without a shaper at all (no rates port): the same NAK; a change of totals alone still works.
  const ctx = { ...dasContext(c) };
  delete ctx.rates;
  const das = await DasServer.start({
    port: 0,
    host: '127.0.0.1',
    clients: [{ address: '127.0.0.1', secret: SECRET }],
    answer: (request) => answerDas(request, ctx),
  });
  try {
    r = await radclient(
      `127.0.0.1:${das.port}`,
      'coa',
      SECRET,
      `Acct-Session-Id="${s.id}", Mikrotik-Rate-Limit="1M/4M"`,
    );
    assert.match(r.output, /Received CoA-NAK[\s\S]*Error-Cause = Resources-Unavailable/, r.output);
    r = await radclient(`127.0.0.1:${das.port}`, 'coa', SECRET, `Acct-Session-Id="${s.id}", Session-Timeout=7200`);
    assert.match(r.output, /Received CoA-ACK/, r.output);
  } finally {
    await das.close();
  }
});

/** One client socket (fixed source port, as a retransmitting server has): send `count` copies, collect replies. */
const client = createSocket('udp4');
let inbox: Buffer[] = [];
client.on('message', (m) => inbox.push(m));
const bound = new Promise<void>((r) => client.bind(0, '127.0.0.1', () => r()));
async function exchange(port: number, packet: Buffer, count: number, waitMs = 200): Promise<Buffer[]> {
  await bound;
  inbox = [];
  for (let i = 0; i < count; i++) client.send(packet, port, '127.0.0.1');
  await new Promise((r) => setTimeout(r, waitMs));
  return inbox;
}

t(
  'a retransmitted request gets the same answer again, not a second action; garbage is dropped and counted',
  async (c) => {
    const s = await buy(c, 'bytes', 10n ** 9n, 'frank');
    const coa = encodeRequest({
      code: 'CoA-Request',
      identifier: 77,
      secret: SECRET,
      attributes: [
        ['User-Name', 'frank'],
        ['Mikrotik-Total-Limit', 5000000],
        ['Event-Timestamp', nowS()],
      ],
    });
    const first = await exchange(c.das.port, coa, 1);
    const again = await exchange(c.das.port, coa, 2);
    assert.is(first.length, 1);
    assert.is(again.length, 2);
    assert.ok(again.every((r) => r.equals(first[0]!)));
    assert.is(decodePacket(first[0]!).code, CODE['CoA-ACK']);
    assert.is(c.setLimitsCalls, 1);
    assert.is(c.das.stats().duplicates, 2);
    // Disconnect retransmitted: ACK twice, not ACK then NAK 503.
    const disc = encodeRequest({
      code: 'Disconnect-Request',
      identifier: 78,
      secret: SECRET,
      attributes: [['Acct-Session-Id', s.id]],
    });
    const d = await exchange(c.das.port, disc, 3);
    assert.equal(
      d.map((r) => decodePacket(r).code),
      [CODE['Disconnect-ACK'], CODE['Disconnect-ACK'], CODE['Disconnect-ACK']],
    );
    const before = c.das.stats();
    for (let i = 0; i < 500; i++) {
      const junk = Buffer.from(coa);
      junk[Math.floor(Math.random() * junk.length)]! ^= 1 + Math.floor(Math.random() * 255);
      await exchange(c.das.port, i % 2 ? junk : Buffer.alloc(i % 40, i), 1, 2).then((r) => assert.ok(r.length <= 1));
    }
    const after = c.das.stats();
    assert.is(after.received - before.received, 500);
    assert.ok(
      after.droppedMalformed + after.droppedBadAuthenticator > before.droppedMalformed + before.droppedBadAuthenticator,
    );
    const nak = new AttributeReader(
      decodePacket(
        (
          await exchange(
            c.das.port,
            encodeRequest({
              code: 'Disconnect-Request',
              identifier: 90,
              secret: SECRET,
              attributes: [
                ['User-Name', 'nobody'],
                ['Event-Timestamp', nowS()],
              ],
            }),
            1,
          )
        )[0]!,
      ).attributes,
    );
    assert.is(nak.integer('Error-Cause'), 503, 'still answering after the garbage');
  },
);

t('the shipped default (no coa_listen: a dual-stack socket on ::): radclient over IPv4 gets its ACK', async (c) => {
  // The reply went to the sender with ::ffff: stripped, which the IPv6 socket refuses (EINVAL),
  // and the failure was dropped unlogged: the request was acted on and radclient saw "No reply".
  const warnings: string[] = [];
  const log = {
    debug: () => undefined,
    info: () => undefined,
    warn: (m: string, f?: unknown) => {
      warnings.push(`${m} ${JSON.stringify(f)}`);
    },
    error: () => undefined,
  };
  const ctx = dasContext(c);
  const das = await DasServer.start({
    port: 0,
    clients: [{ address: '127.0.0.1', secret: SECRET }],
    answer: (request) => answerDas(request, ctx),
    log,
  });
  try {
    const s = await buy(c, 'seconds', 3600n, 'dual');
    const r = await radclient(`127.0.0.1:${das.port}`, 'disconnect', SECRET, `Acct-Session-Id="${s.id}"`, {
      timeoutS: 2,
      retries: 1,
    });
    assert.match(r.output, /Received Disconnect-ACK/, r.output);
    assert.is(r.code, 0);
    assert.equal([c.sessions.get(s.id)!.state, das.stats().sendFailures], ['TERMINATED', 0]);
    assert.equal(warnings, []);
  } finally {
    await das.close();
  }
});

t(
  'replay guard (RFC 5176 §3.5): a Disconnect naming a MAC needs Event-Timestamp; one made before a session ' +
    'never ends it',
  async (c) => {
    const a = await buy(c, 'seconds', 3600n);
    const stationOf = (m: string) => m.toUpperCase().replace(/:/g, '-');
    // Unbound (no Event-Timestamp, no Acct-Session-Id): refused, the session runs on.
    let r = await radclient(target(c), 'disconnect', SECRET, `Calling-Station-Id="${stationOf(a.mac)}"`);
    assert.match(r.output, /Received Disconnect-NAK[\s\S]*Error-Cause = Missing-Attribute/, r.output);
    assert.is(c.sessions.get(a.id)!.state, 'ACTIVE');
    // A Disconnect of this MAC captured 10 s ago (it ended the session the MAC had then), replayed now: the session
    // bought since is not its target.
    const captured = encodeRequest({
      code: 'Disconnect-Request',
      identifier: 40,
      secret: SECRET,
      attributes: [
        ['Calling-Station-Id', stationOf(a.mac)],
        ['Event-Timestamp', nowS() - 10],
      ],
    });
    const answer = decodePacket((await exchange(c.das.port, captured, 1))[0]!);
    assert.is(answer.code, CODE['Disconnect-NAK']);
    assert.is(new AttributeReader(answer.attributes).integer('Error-Cause'), 503);
    assert.is(c.sessions.get(a.id)!.state, 'ACTIVE', 'the newly paid session runs on');
    // A fresh request (same MAC, timestamped now) does end it.
    r = await radclient(target(c), 'disconnect', SECRET, `Calling-Station-Id="${stationOf(a.mac)}", ${now()}`);
    assert.match(r.output, /Received Disconnect-ACK/, r.output);
    assert.is(c.sessions.get(a.id)!.endCause, 'disconnect');
  },
);

t('a byte limit from CoA past 2^53 - 1 (0xffffffff gigawords) is clamped to 2^53 - 1', async (c) => {
  const d = await buy(c, 'bytes', 10n ** 9n, 'gigi');
  const r = await radclient(
    target(c),
    'coa',
    SECRET,
    `User-Name="gigi", ChilliSpot-Max-Total-Octets=4294967295, ChilliSpot-Max-Total-Gigawords=4294967295, ${now()}`,
  );
  assert.match(r.output, /Received CoA-ACK/, r.output);
  assert.is(c.sessions.get(d.id)!.allotment, BigInt(Number.MAX_SAFE_INTEGER));
  assert.is(
    new AttributeReader(
      decodePacket(
        encodeRequest({
          code: 'Access-Request',
          identifier: 1,
          secret: SECRET,
          attributes: [
            ['Mikrotik-Total-Limit', 0xffffffff],
            ['Mikrotik-Total-Limit-Gigawords', 0xffffffff],
          ],
        }),
      ).attributes,
    ).octets('Mikrotik-Total-Limit', 'Mikrotik-Total-Limit-Gigawords'),
    MAX_OCTET_LIMIT,
    "the same for a voucher's Access-Accept",
  );
});

t.after(() => {
  client.close();
});
t.run();
