// tier: fast
/**
 * The valve over the portal's control socket (ndsctl.sock), against a server that speaks the protocol as openNDS and
 * nodogsplash do (src/sim/socket.ts: one request line, answer, close). Also: request framing as ndsctl builds it,
 * the reply → exit-code mapping, priorities (deauth and the meter's final reading before auths before the tick's
 * snapshot) and the resolver.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NdsctlRunner, portalSocketResolver, socketOutcome, socketRequest, Valve } from '../../src/portal/index.ts';
import { PortalModel } from '../../src/sim/index.ts';
import { listenNdsctlSocket, portalRequestHandler } from '../../src/sim/socket.ts';
import { rejectsWithCode } from '../helpers/assert.ts';
import { droppingNdsctlServer, ipv6Recorder, rawNdsctlServer } from './raw-ndsctl.ts';

const A = '02:00:00:00:0c:01';
const B = '02:00:00:00:0c:02';
const C = '02:00:00:00:0c:03';
const dir = mkdtempSync(join(tmpdir(), 'sluice-sock-'));
const cleanups: Array<() => Promise<void> | void> = [];
let n = 0;
const sockPath = (): string => join(dir, `ndsctl-${n++}.sock`);

test.after(async () => {
  for (const c of cleanups.reverse()) await c();
  rmSync(dir, { recursive: true, force: true });
});

/** A valve whose command would fail loudly: every call must go over the socket. */
function socketValve(path: string, opts: Partial<ConstructorParameters<typeof Valve>[0]> = {}): Valve {
  const valve = new Valve({ command: ['/nonexistent/ndsctl'], socketPath: () => path, timeoutMs: 1000, ...opts });
  cleanups.push(() => valve.destroy());
  return valve;
}

async function simPortal(
  flavour: 'opennds' | 'nodogsplash' = 'opennds',
): Promise<{ model: PortalModel; path: string; requests: string[] }> {
  const model = new PortalModel({ flavour });
  const path = sockPath();
  const requests: string[] = [];
  const handle = portalRequestHandler(model);
  const server = await listenNdsctlSocket(path, (line) => {
    requests.push(line);
    return handle(line);
  });
  cleanups.push(() => server.close());
  return { model, path, requests };
}

/** A raw server: records the exact bytes of each request and answers with `reply(request)` after `delayMs`. */
async function rawServer(
  reply: (request: string) => string | null,
  delayMs = 0,
): Promise<{ path: string; seen: string[] }> {
  const path = sockPath();
  const server = await rawNdsctlServer(path, reply, delayMs);
  cleanups.push(() => server.close());
  return { path, seen: server.seen };
}

test('requests are framed as ndsctl frames them: arguments joined by commas, CRLF CRLF', () => {
  assert.is(socketRequest(['json']), 'json\r\n\r\n');
  assert.is(socketRequest(['json', A]), `json ${A}\r\n\r\n`);
  assert.is(socketRequest(['auth', A, '90', '0', '0', '1', '2']), `auth ${A},90,0,0,1,2\r\n\r\n`);
  assert.throws(() => socketRequest([]));
});

test(
  'replies map to the exit codes ndsctl returns: Yes 0, ' + 'No 1, anything else to a yes/no command 2; json as is',
  () => {
    assert.is(socketOutcome(['auth', A], 'Yes').code, 0);
    assert.is(socketOutcome(['deauth', A], 'No').code, 1);
    assert.is(socketOutcome(['deauth', A], 'Yes\n').code, 2, 'ndsctl compares the whole reply with strcmp');
    assert.is(socketOutcome(['auth', A], '').code, 2);
    const json = socketOutcome(['json'], '{"clients":{}}');
    assert.is(json.code, 0);
    assert.is(json.stdout, '{"clients":{}}');
  },
);

for (const flavour of ['opennds', 'nodogsplash'] as const) {
  test(`${flavour}: open, look up, snapshot and close a client over the socket only`, async () => {
    const { model, path, requests } = await simPortal(flavour);
    model.addClient(A, '10.0.0.2');
    const token = model.get(A)!.token;
    const valve = socketValve(path, { flavour });
    assert.is(await valve.open(A, { sessionMinutes: 30, downloadQuotaKiB: 1024 }), 'opened');
    assert.is(model.get(A)?.state, 'Authenticated');
    assert.is((await valve.client(A))?.state, 'Authenticated');
    const snap = await valve.snapshot();
    assert.equal(
      snap.clients.map((c) => c.mac),
      [A],
    );
    assert.is(await valve.close(A), 'closed');
    assert.is(model.get(A)?.state === 'Authenticated', false);
    assert.is(await valve.close(B), 'not-found', 'an unknown MAC is "No": the gate is shut either way');
    assert.ok(requests.includes(`json ${A}`));
    const auth = requests.find((r) => r.startsWith('auth '));
    // openNDS: the auth and the deauth by the token the lookup showed (flat: portal/tokens.ts); nodogsplash by MAC.
    if (flavour === 'opennds') {
      assert.match(auth ?? '', new RegExp(`^auth ${token},30,`));
      assert.ok(requests.includes(`deauth ${token}`));
    } else {
      assert.is(auth, `auth ${A}`, 'nodogsplash auth takes the MAC alone');
      assert.ok(requests.includes(`deauth ${A}`));
    }
  });
}

test('an abnormal reply to a yes/no command is ERR_NDSCTL_FAILED, not success', async () => {
  const { path } = await rawServer((req) => (req.startsWith('deauth') ? 'Maybe' : '{}'));
  await rejectsWithCode(socketValve(path).close(A), 'ERR_NDSCTL_FAILED');
});

test('a socket nobody listens on is ERR_PORTAL_DOWN (ndsctl exit 3)', async () => {
  const path = join(dir, 'stale.sock');
  writeFileSync(path, '');
  await rejectsWithCode(socketValve(path).close(A), 'ERR_PORTAL_DOWN');
});

test(
  'a portal that reads an auth, does it and drops the connection before answering: the valve looks, and the gate ' +
    'is open by that auth on the counters made for it',
  async () => {
    const model = new PortalModel({ flavour: 'opennds' });
    model.addClient(A, '10.0.0.2');
    const path = sockPath();
    const server = await droppingNdsctlServer(path, portalRequestHandler(model), (line) => line.startsWith('auth '));
    cleanups.push(() => server.close());
    const counted: string[] = [];
    const counter = {
      beforeAuth: async (mac: string) => void counted.push(`count ${mac}`),
      afterDeauth: async (mac: string) => void counted.push(`uncount ${mac}`),
    };
    const valve = socketValve(path, {
      flavour: 'opennds',
      counter,
      neighbour: async () => '10.0.0.2',
      lookAgainMs: [1, 1, 1, 1],
    });
    const opened = await valve.open(A).catch((e: unknown) => `error ${(e as { code?: string }).code ?? String(e)}`);
    assert.is(opened, 'opened');
    assert.is(server.dropped.length, 1, 'the auth went out and its connection was dropped');
    assert.is(model.get(A)?.state, 'Authenticated');
    assert.equal(counted, [`count ${A}`], 'the counters made before the auth are kept');
  },
);

test('a portal that never answers is ERR_NDSCTL_TIMEOUT after timeoutMs, and the queue moves on', async () => {
  const { path } = await rawServer((req) => (req.startsWith('deauth') ? null : 'Yes'), 0);
  const valve = socketValve(path, { timeoutMs: 200 });
  await rejectsWithCode(valve.close(A), 'ERR_NDSCTL_TIMEOUT');
  assert.is((await valve.runner.run(['auth', B])).stdout, 'Yes');
});

test('a reply larger than the cap is refused, not buffered', async () => {
  const { path } = await rawServer(() => 'x'.repeat(64 * 1024));
  const runner = new NdsctlRunner({ command: ['/nonexistent/ndsctl'], socketPath: () => path, maxOutputBytes: 1024 });
  await rejectsWithCode(runner.run(['json']), 'ERR_NDSCTL_FAILED');
  await runner.destroy();
});

test(
  'priorities: a queued deauth goes before a final reading, that before queued auths, the auths before the tick ' +
    'snapshot',
  async () => {
    // `json <mac>` of a client openNDS does not list: `{}`.
    const { path, seen } = await rawServer(
      (req) => (req.startsWith('json ') ? '{}' : req.startsWith('json') ? '{"clients":{}}' : 'Yes'),
      30,
    );
    const valve = socketValve(path);
    const first = valve.runner.run(['auth', A]); // in flight while the others queue
    let readStarted = 0;
    const queued = [
      valve.runner.run(['auth', B]),
      valve.runner.run(['auth', C]),
      valve.runExclusive((exec) => exec(['json'])), // the meter's slot
      valve.client(B, 'read', () => {
        readStarted = seen.length;
      }), // the meter's final reading of one client
      valve.close(C),
    ];
    await Promise.all([first, ...queued]);
    assert.equal(
      seen.map(
        (r) => r.trim().split(' ')[0] + (r.includes(C) ? ':C' : r.includes(B) ? ':B' : r.includes(A) ? ':A' : ''),
      ),
      ['auth:A', 'deauth:C', 'json:B', 'auth:B', 'auth:C', 'json'],
    );
    assert.is(readStarted, 2, 'onStart runs when the reading leaves the queue, not when it is asked for');
  },
);

test('a deauth the portal answers Yes on its socket needs no look; a No is looked at', async () => {
  const { model, path, requests } = await simPortal();
  model.addClient(A, '10.0.0.2');
  const valve = socketValve(path, { flavour: 'opennds' });
  assert.is(await valve.open(A), 'opened');
  requests.length = 0;
  assert.equal(await valve.closeAndLook(A), { result: 'closed', state: null }, 'not listed: the portal deleted it');
  assert.equal(
    requests.filter((r) => r.startsWith('json')),
    [],
    'no json <mac> after the Yes',
  );
  requests.length = 0;
  model.addClient(B, '10.0.0.3');
  assert.equal(await valve.closeAndLook(B), { result: 'not-found', state: 'Preauthenticated' });
  assert.ok(requests.includes(`json ${B}`), 'a No says nothing of the gate: looked at');
  // Over the ndsctl command the exit code may be a wrapper's: test/gate/gatekeeper.test.ts looks after it.
});

test("a listing's trusted MACs go to the IPv6 gate: they pass it as they pass the portal", async () => {
  const model = new PortalModel({ flavour: 'opennds', trustedMacs: [C.toUpperCase()] });
  const path = sockPath();
  const server = await listenNdsctlSocket(path, portalRequestHandler(model));
  cleanups.push(() => server.close());
  const ipv6 = ipv6Recorder();
  const told = ipv6.told;
  const valve = socketValve(path, { flavour: 'opennds', ipv6 });
  model.addClient(A, '10.0.0.2');
  const snap = await valve.snapshot();
  assert.equal(snap.trusted, [C]);
  assert.equal(told, [[C]]);
});

test('the resolver: off → command; auto only with the stock ndsctl; a path only while it is a socket', async () => {
  const { path } = await rawServer(() => 'Yes');
  assert.is(portalSocketResolver({ ndsctl: ['/usr/bin/ndsctl'], ndsctlSocket: 'off' })(), undefined);
  assert.is(
    portalSocketResolver({ ndsctl: ['/opt/wrapper', 'ndsctl'], ndsctlSocket: 'auto' })(),
    undefined,
    'a custom command reaches the portal some other way',
  );
  assert.is(portalSocketResolver({ ndsctl: ['/usr/bin/ndsctl'], ndsctlSocket: path })(), path);
  const missing = join(dir, 'absent.sock');
  assert.is(
    portalSocketResolver({ ndsctl: ['/usr/bin/ndsctl'], ndsctlSocket: missing })(),
    undefined,
    'absent → the command',
  );
});

test.run();
