// tier: fast
/**
 * PC-sync, inbound: POST /pcsync/logout on the LAN endpoint (docs/pc-sync.md). Against the endpoint in this process
 * with a recording backend: signed like the hook (the hook's own signer makes a call that passes), forged, altered,
 * stale, replayed (also after a restart: the nonce is on flash before anything ends), malformed and unsaveable calls
 * refused with their codes and nothing ended; the route is 404 without a secret. The config: the secret validated and
 * redacted. The real daemon: test/http/pcsync-daemon.test.ts.
 */
import { request } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { SluiceBackend } from '../../src/api/index.ts';
import { redactConfig } from '../../src/config/index.ts';
import { configFromUciPartial } from '../../src/config/load.ts';
import { parseUci } from '../../src/config/uci.ts';
import { HttpEndpoint } from '../../src/http/server.ts';
import { NonceLedger, PCSYNC_NONCES_FILE } from '../../src/http/pcsync-nonces.ts';
import { pcsyncSignature } from '../../src/http/pcsync-verify.ts';
import type { EndCause, Session } from '../../src/sessions/index.ts';
import { signedHeaders } from '../../src/upstream/hook/signature.ts';

const test = suite('PC-sync logout');
const SECRET = 'pcsync-secret-0123456789';
const WINDOW = 300_000;
const MAC = '02:00:00:00:0f:01';

interface Ended {
  mac?: string;
  user?: string;
  cause?: EndCause;
}

function liveSession(mac: string, id = `s-${mac}`): Session {
  return {
    id,
    mac,
    state: 'ACTIVE',
    metric: 'seconds',
    allotment: 3600n,
    used: 0n,
    bytes: 0n,
    user: 'pc-7',
    payments: [],
    createdAt: 1,
    startedAt: 1,
    expiresAt: null,
    endedAt: null,
    endCause: null,
  } as unknown as Session;
}

function backend(ended: Ended[], sessions: Session[] = [liveSession(MAC)]): SluiceBackend {
  return {
    now: () => Date.now(),
    pricing: () => [],
    session: (q: { mac?: string; id?: string }) =>
      sessions.find((s) => (q.mac !== undefined ? s.mac === q.mac : s.id === q.id)),
    terminate: async (mac: string, cause: EndCause) => {
      ended.push({ mac, cause });
      return {
        session: { ...sessions.find((s) => s.mac === mac)!, state: 'TERMINATED', endCause: cause },
        gate: 'closed',
      };
    },
    logout: async (user: string) => {
      ended.push({ user, cause: 'pc-logout' });
      return {
        sessions: sessions
          .filter((s) => s.user === user)
          .map((s) => ({ ...s, state: 'TERMINATED', endCause: 'pc-logout' })),
        gate: 'closed',
      };
    },
  } as unknown as SluiceBackend;
}

async function start(ended: Ended[], o: { dir?: string | null; pcsync?: boolean } = {}): Promise<HttpEndpoint> {
  return HttpEndpoint.start({
    host: '127.0.0.1',
    port: 0,
    rateLimitPerMinute: 10_000,
    backend: backend(ended),
    forms: { voucher: false },
    macOf: async () => null,
    pcsync:
      o.pcsync === false
        ? null
        : { secret: SECRET, windowMs: WINDOW, nonces: await NonceLedger.open(o.dir ?? null, WINDOW) },
  });
}

function post(
  port: number,
  body: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: Record<string, any> }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path: '/pcsync/logout', method: 'POST', agent: false, headers },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: text ? (JSON.parse(text) as Record<string, any>) : {} }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function signed(body: string, o: { ts?: number; nonce?: string; secret?: string } = {}): Record<string, string> {
  const ts = o.ts ?? Date.now();
  const nonce = o.nonce ?? `n-${Math.random().toString(36).slice(2)}`;
  return {
    'content-type': 'application/json',
    'x-sluice-timestamp': String(ts),
    'x-sluice-nonce': nonce,
    'x-sluice-signature': pcsyncSignature(o.secret ?? SECRET, ts, nonce, body),
  };
}

test("a call signed as the hook signs (the hook signer itself) ends the MAC's session pc-logout", async () => {
  const ended: Ended[] = [];
  const endpoint = await start(ended);
  try {
    const body = JSON.stringify({ mac: MAC.toUpperCase() });
    const r = await post(endpoint.port, body, signedHeaders(SECRET, Buffer.from(body), Date.now()));
    assert.is(r.status, 200, JSON.stringify(r.body));
    assert.is(r.body.ended, 1);
    assert.is(r.body.sessions[0].state, 'TERMINATED');
    assert.is(r.body.sessions[0].end_cause, 'pc-logout');
    assert.is(r.body.gate, 'closed');
    assert.equal(ended, [{ mac: MAC, cause: 'pc-logout' }]);
  } finally {
    await endpoint.close();
  }
});

test('by session id and by user', async () => {
  const ended: Ended[] = [];
  const endpoint = await start(ended);
  try {
    const byId = JSON.stringify({ session_id: `s-${MAC}` });
    assert.is((await post(endpoint.port, byId, signed(byId))).status, 200);
    const byUser = JSON.stringify({ user: 'pc-7' });
    const r = await post(endpoint.port, byUser, signed(byUser));
    assert.is(r.status, 200);
    assert.is(r.body.ended, 1);
    assert.equal(ended, [
      { mac: MAC, cause: 'pc-logout' },
      { user: 'pc-7', cause: 'pc-logout' },
    ]);
    const none = JSON.stringify({ mac: '02:00:00:00:0f:99' });
    const n = await post(endpoint.port, none, signed(none));
    assert.is(n.status, 404);
    assert.is(n.body.error.code, 'ERR_SESSION_NOT_FOUND');
  } finally {
    await endpoint.close();
  }
});

test('forged, altered, stale, replayed and malformed calls are refused with their codes; nothing ends', async () => {
  const ended: Ended[] = [];
  const endpoint = await start(ended);
  try {
    const body = JSON.stringify({ mac: MAC });
    const forged = await post(endpoint.port, body, signed(body, { secret: 'another-secret-0123456789' }));
    assert.is(forged.status, 401);
    assert.is(forged.body.error.code, 'ERR_PCSYNC_SIGNATURE');
    const h = signed(body);
    const altered = await post(endpoint.port, JSON.stringify({ mac: '02:00:00:00:0f:02' }), h);
    assert.is(altered.body.error.code, 'ERR_PCSYNC_SIGNATURE');
    const stale = await post(endpoint.port, body, signed(body, { ts: Date.now() - WINDOW - 60_000 }));
    assert.is(stale.status, 401);
    assert.is(stale.body.error.code, 'ERR_PCSYNC_EXPIRED');
    const unsigned = await post(endpoint.port, body, { 'content-type': 'application/json' });
    assert.is(unsigned.status, 400);
    assert.is(unsigned.body.error.code, 'ERR_PCSYNC_INVALID');
    const two = JSON.stringify({ mac: MAC, user: 'pc-7' });
    const both = await post(endpoint.port, two, signed(two, { nonce: 'kept-for-later-1' }));
    assert.is(both.status, 400);
    assert.is(both.body.error.code, 'ERR_PCSYNC_INVALID');
    assert.equal(ended, [], 'nothing ended');
    // A malformed call burned no nonce: the same nonce on a good call is taken.
    const ok = await post(endpoint.port, body, signed(body, { nonce: 'kept-for-later-1' }));
    assert.is(ok.status, 200);
    const replay = await post(endpoint.port, body, signed(body, { nonce: 'kept-for-later-1' }));
    assert.is(replay.status, 409);
    assert.is(replay.body.error.code, 'ERR_PCSYNC_REPLAYED');
    assert.is(ended.length, 1, 'the replay ended nothing');
  } finally {
    await endpoint.close();
  }
});

test('the nonce is on flash before the logout runs: a replay after a restart is refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-pcsync-'));
  try {
    const ended: Ended[] = [];
    const body = JSON.stringify({ mac: MAC });
    const headers = signed(body, { nonce: 'restart-nonce-1' });
    const first = await start(ended, { dir });
    try {
      assert.is((await post(first.port, body, headers)).status, 200);
    } finally {
      await first.close();
    }
    const saved = JSON.parse(readFileSync(join(dir, PCSYNC_NONCES_FILE), 'utf8')) as {
      nonces: Array<[string, number]>;
    };
    assert.ok(
      saved.nonces.some(([n]) => n === 'restart-nonce-1'),
      'on flash',
    );
    const second = await start(ended, { dir });
    try {
      const replay = await post(second.port, body, headers);
      assert.is(replay.body.error.code, 'ERR_PCSYNC_REPLAYED');
      assert.is(ended.length, 1);
    } finally {
      await second.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test(
  'a damaged nonce file is not "no nonces": calls signed up to the start plus a window are refused, and that ' +
    'floor outlives a restart',
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-pcsync-'));
    const file = join(dir, PCSYNC_NONCES_FILE);
    const T = Date.parse('2026-05-01T12:00:00Z');
    const claim = async (ledger: NonceLedger, nonce: string, ts: number, now: number): Promise<string> => {
      try {
        await ledger.claim(nonce, ts, now);
        return 'ok';
      } catch (err) {
        return (err as { code: string }).code;
      }
    };
    try {
      for (const damaged of [
        '{"nonces":[["a-nonce-01',
        '[["a-nonce-01", "yesterday"]]',
        '{"refused_up_to":"soon","nonces":[]}',
        '42',
        '',
      ]) {
        writeFileSync(file, damaged);
        const ledger = await NonceLedger.open(dir, WINDOW, T);
        // Signed just before the restart (a captured call), and one signed by a PC clock a whole window ahead.
        assert.is(await claim(ledger, 'captured-01', T - 1000, T + 1000), 'ERR_PCSYNC_NONCES_LOST', damaged);
        assert.is(await claim(ledger, 'captured-02', T + WINDOW, T + 1000), 'ERR_PCSYNC_NONCES_LOST');
        assert.equal(ledger.stats(T + 1000), {
          nonces: 'damaged',
          refused_up_to: T + WINDOW,
          claimed: 0,
          replayed: 0,
          refused_nonces_lost: 2,
          not_saved: 0,
        });
      }
      // Past the floor a call runs and the file is sound again, the floor written with it: a restart within the window
      // still refuses what the lost file may have held.
      const ledger = await NonceLedger.open(dir, WINDOW, T);
      const later = T + WINDOW + 1000;
      assert.is(await claim(ledger, 'fresh-call-01', later, later), 'ok');
      const saved = JSON.parse(readFileSync(file, 'utf8')) as {
        refused_up_to: number;
        nonces: Array<[string, number]>;
      };
      assert.equal(saved, { refused_up_to: T + WINDOW, nonces: [['fresh-call-01', later]] });
      const restarted = await NonceLedger.open(dir, WINDOW, later + 1000);
      assert.is(await claim(restarted, 'captured-03', T + 10, later + 1000), 'ERR_PCSYNC_NONCES_LOST');
      assert.is(await claim(restarted, 'fresh-call-01', later, later + 1000), 'ERR_PCSYNC_REPLAYED');
      // A window after the floor, the window alone refuses what it covered: the figures say 'ok' again.
      assert.is(restarted.stats(T + 2 * WINDOW + 1).nonces, 'ok');
      // The file an earlier version wrote (a bare list of pairs, no seal) still reads; a missing file that was never
      // sealed is no nonces, not damage (one sealed and gone is: test/storage/durable-file-suite.ts).
      rmSync(`${file}.seal`);
      writeFileSync(file, JSON.stringify([['old-format-01', later]]));
      const upgraded = await NonceLedger.open(dir, WINDOW, later);
      assert.is(await claim(upgraded, 'old-format-01', later, later), 'ERR_PCSYNC_REPLAYED');
      assert.is(upgraded.stats(later).nonces, 'ok');
      rmSync(file);
      rmSync(`${file}.seal`, { force: true });
      assert.is((await NonceLedger.open(dir, WINDOW, later)).stats(later).nonces, 'ok');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test('a nonce that cannot be saved: 503 ERR_PCSYNC_STORE, nothing ended', async () => {
  const ended: Ended[] = [];
  const endpoint = await start(ended, { dir: join(tmpdir(), 'sluice-pcsync-no-such-dir', 'x') });
  try {
    const body = JSON.stringify({ mac: MAC });
    const r = await post(endpoint.port, body, signed(body));
    assert.is(r.status, 503);
    assert.is(r.body.error.code, 'ERR_PCSYNC_STORE');
    assert.equal(ended, []);
  } finally {
    await endpoint.close();
  }
});

test('without http.pcsync_secret the route is 404', async () => {
  const ended: Ended[] = [];
  const endpoint = await start(ended, { pcsync: false });
  try {
    const body = JSON.stringify({ mac: MAC });
    const r = await post(endpoint.port, body, signed(body));
    assert.is(r.status, 404);
    assert.equal(ended, []);
  } finally {
    await endpoint.close();
  }
});

const PLAN = `config pricing 'time'\n\toption price_per_step '1'\n`;

test(
  'config: pcsync_secret validated (≥ 16 characters, never ' + 'echoed), pcsync_window in range, the secret redacted',
  () => {
    const bad = configFromUciPartial(
      parseUci(`${PLAN}config http 'http'\n\toption pcsync_secret 'short'\n\toption pcsync_window '2'\n`),
    );
    const secret = bad.problems.find((p) => p.path === 'http.pcsync_secret');
    assert.ok(secret, 'short secret refused');
    assert.is(secret!.value, undefined, 'the secret is not echoed');
    assert.ok(bad.problems.some((p) => p.path === 'http.pcsync_window' && p.value === '2'));
    assert.is(bad.config.http.pcsyncSecret, '', 'the route stays off');
    const good = configFromUciPartial(
      parseUci(`${PLAN}config http 'http'\n\toption pcsync_secret '${SECRET}'\n\toption pcsync_window '60'\n`),
    );
    assert.equal(good.problems, []);
    assert.is(good.config.http.pcsyncSecret, SECRET);
    assert.is(good.config.http.pcsyncWindowMs, 60_000);
    assert.is(redactConfig(good.config).http.pcsyncSecret, '***');
    assert.not.match(JSON.stringify(redactConfig(good.config)), SECRET);
  },
);

test.run();
