// tier: fast
/**
 * An auth whose outcome the portal did not say (an abnormal reply, exit 2; the connection dropped once the auth went
 * out, exit 3 "error reading"; a timeout), against a scripted ndsctl: the
 * bytes a client passes through a gate the portal did open are on the counters made before that auth, so nothing may
 * take them back or make them afresh (a new epoch from 0) until the portal's word says whether the auth took.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Valve } from '../../src/portal/index.ts';
import { PortalModel } from '../../src/sim/index.ts';
import { isSluiceError } from '../../src/errors.ts';
import { AuthOutcomeUnknown } from '../../src/portal/look-after-auth.ts';
import { fakeSpawn, type Script } from './fake-spawn.ts';

const A = '02:00:00:00:0c:01';
const IP = '10.0.0.2';
const ABNORMAL: Script = { code: 2, stderr: 'ndsctl: Error: the portal sent an abnormal reply.\n' };
/** openNDS restarting: its control socket gone (what ndsctl, and the socket transport, exit 3 for). */
const DOWN: Script = { code: 3, stderr: 'ndsctl: cannot connect to the socket\n' };
/** openNDS took the auth and dropped its control connection before the answer: what its ndsctl exits 3 for then. */
const DROPPED: Script = { code: 3, stderr: 'ndsctl: Error reading socket: Connection reset by peer\n' };

/** What an open came to: its result, or its error's code (uvu cannot print a SluiceError's details). */
async function outcome(open: Promise<string>): Promise<string> {
  return open.catch((e: unknown) => `error ${isSluiceError(e) ? e.code : String(e)}`);
}

function clientStates(): { preauth: string; authed: string } {
  const model = new PortalModel({}, { clock: { now: () => 1795221700_000 } });
  model.addClient(A, IP);
  const preauth = model.renderJson('opennds', A);
  model.auth(A);
  return { preauth, authed: model.renderJson('opennds', A) };
}

/**
 * A valve on the direct path (the address from the neighbour table: the auth goes at once), with kernel counters that
 * log what is done to them.
 */
function directValve(scripts: Script[], extra: Partial<ConstructorParameters<typeof Valve>[0]> = {}) {
  const seen: string[] = [];
  const counter = {
    beforeAuth: async (mac: string, ip: string | null) => void seen.push(`count ${mac} ${ip}`),
    afterDeauth: async (mac: string) => void seen.push(`uncount ${mac}`),
    afterRefusal: async (mac: string) => void seen.push(`refused ${mac}`),
  };
  const fake = fakeSpawn(scripts);
  const valve = new Valve({
    command: ['ndsctl'],
    spawn: fake.spawn,
    flavour: 'opennds',
    counter,
    neighbour: async () => IP,
    lookAgainMs: [1, 1, 1, 1],
    ...extra,
  });
  return { valve, seen, fake, verbs: () => fake.calls.map((c) => c[1]) };
}

test(
  'auth answered abnormally while openNDS restarts, the look after it unanswered at first: looked again until the ' +
    'portal answers; Authenticated → opened, its counters made once and never taken back',
  async () => {
    const { authed } = clientStates();
    const { valve, seen, verbs } = directValve([ABNORMAL, DOWN, DOWN, { stdout: authed }]);
    assert.is(await outcome(valve.open(A, undefined, IP)), 'opened');
    assert.equal(verbs(), ['auth', 'json', 'json', 'json']);
    assert.equal(seen, [`count ${A} ${IP}`], 'the epoch the auth began goes on: no new one from 0, nothing undone');
    assert.is(valve.lastIp(A), IP);
    await valve.destroy();
  },
);

test(
  'an abnormal auth no look answers within the bound: the outcome stays unknown (the gate retries it), and the next ' +
    'open looks first; Authenticated → already-open, the counters neither made again nor taken back',
  async () => {
    const { authed } = clientStates();
    const { valve, seen, verbs } = directValve([ABNORMAL, DOWN, DOWN, DOWN, DOWN, DOWN, { stdout: authed }]);
    const err = await valve.open(A, undefined, IP).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof AuthOutcomeUnknown, String(err));
    assert.is(err.code, 'ERR_PORTAL_AUTH_UNKNOWN', 'the gate retries it as an auth that timed out');
    assert.ok(isSluiceError(err.cause, 'ERR_NDSCTL_FAILED'), 'the abnormal answer is its cause');
    assert.equal(verbs(), ['auth', 'json', 'json', 'json', 'json', 'json'], 'five looks: the first and four again');
    assert.is(await outcome(valve.open(A, undefined, IP)), 'already-open');
    assert.equal(verbs().slice(6), ['json'], 'looked up first: no auth at once');
    assert.equal(seen, [`count ${A} ${IP}`], 'the bytes that passed stay on the counters of that auth');
    await valve.destroy();
  },
);

test(
  'an auth that timed out, no token kept by the BinAuth: the next open looks first; Authenticated → already-open, ' +
    'its counters not made afresh',
  async () => {
    const { authed } = clientStates();
    const { valve, seen, verbs, fake } = directValve([{ hang: true }, { stdout: authed }], {
      timeoutMs: 50,
      timeoutBackoffMs: 1,
    });
    const err = await valve.open(A, undefined, IP).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(isSluiceError(err, 'ERR_NDSCTL_TIMEOUT'), String(err));
    assert.is(fake.kills, 1);
    assert.is(await outcome(valve.open(A, undefined, IP)), 'already-open');
    assert.equal(verbs(), ['auth', 'json']);
    assert.equal(seen, [`count ${A} ${IP}`]);
    await valve.destroy();
  },
);

test('a look after an unknown outcome finds the client Preauthenticated: it is authed, on fresh counters', async () => {
  const { preauth } = clientStates();
  const { valve, seen, verbs } = directValve([ABNORMAL, DOWN, DOWN, DOWN, DOWN, DOWN, { stdout: preauth }, {}]);
  assert.is(await outcome(valve.open(A, undefined, IP)), 'error ERR_PORTAL_AUTH_UNKNOWN');
  assert.is(await outcome(valve.open(A, undefined, IP)), 'opened');
  assert.equal(verbs().slice(6), ['json', 'auth']);
  assert.equal(seen, [`count ${A} ${IP}`, `count ${A} ${IP}`], 'the gate was shut: a new epoch from its auth');
  await valve.destroy();
});

test('an abnormal auth the look answers with the client Preauthenticated: the error, the auth not taken', async () => {
  const { preauth } = clientStates();
  const { valve, verbs } = directValve([ABNORMAL, DOWN, { stdout: preauth }]);
  const err = await valve.open(A, undefined, IP).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(isSluiceError(err, 'ERR_NDSCTL_FAILED'), String(err));
  assert.not.ok(err instanceof AuthOutcomeUnknown, "the portal's word: not an unknown outcome");
  assert.equal(verbs(), ['auth', 'json', 'json']);
  await valve.destroy();
});

test(
  'an auth whose connection the portal dropped before answering (exit 3, "error reading"): looked up as after an ' +
    'abnormal answer; Authenticated → opened, its counters made once and never taken back',
  async () => {
    const { authed } = clientStates();
    const { valve, seen, verbs } = directValve([DROPPED, { stdout: authed }]);
    assert.is(await outcome(valve.open(A, undefined, IP)), 'opened');
    assert.equal(verbs(), ['auth', 'json']);
    assert.equal(seen, [`count ${A} ${IP}`], 'the epoch the auth began goes on');
    assert.is(valve.lastIp(A), IP);
    await valve.destroy();
  },
);

test(
  'an auth whose connection the portal dropped, no look answering within the bound: ERR_PORTAL_AUTH_UNKNOWN, and ' +
    'the next open looks first; Authenticated → already-open, the counters neither made again nor taken back',
  async () => {
    const { authed } = clientStates();
    const { valve, seen, verbs } = directValve([DROPPED, DOWN, DOWN, DOWN, DOWN, DOWN, { stdout: authed }]);
    const err = await valve.open(A, undefined, IP).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof AuthOutcomeUnknown, String(err));
    assert.ok(isSluiceError(err.cause, 'ERR_PORTAL_DOWN'), 'the dropped auth is its cause');
    assert.equal(verbs(), ['auth', 'json', 'json', 'json', 'json', 'json']);
    assert.is(await outcome(valve.open(A, undefined, IP)), 'already-open');
    assert.equal(verbs().slice(6), ['json'], 'looked up first: no auth at once');
    assert.equal(seen, [`count ${A} ${IP}`], 'the bytes that passed stay on the counters of that auth');
    await valve.destroy();
  },
);

test(
  'an auth that never reached the portal (exit 3, cannot connect) is not looked after: ' + 'ERR_PORTAL_DOWN',
  async () => {
    const { valve, verbs } = directValve([DOWN]);
    assert.is(await outcome(valve.open(A, undefined, IP)), 'error ERR_PORTAL_DOWN');
    assert.equal(verbs(), ['auth'], 'the request never went out: its outcome is known');
    await valve.destroy();
  },
);

test.run();
