// tier: peers; needs initdb mosquitto
/**
 * What the lease service believes (docs/roaming.md, "What the fleet trusts"), on a real mosquitto and PostgreSQL 15:
 * routers are MQTT clients of the test that answer the service's commands as a router would, or as the audit's forger
 * did. A reply counts only from the router it was sent to, for the move it was sent about; a holder's figures never
 * pass its lease; a sale cannot take another router's device; whoever breaks a rule is named (venue_breaches, read by
 * the Venues page). Each forgery here was believed before.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import mqtt, { type MqttClient } from 'mqtt';
import { FakeRouter, freshDb, recordingLog, waitFor } from '../fleet/rig.ts';
import { Mosquitto } from '../peers/mosquitto.ts';
import { Postgres } from '../peers/postgres.ts';
import { migrate, type Db } from '../../src/fleet/db/index.ts';
import { venuesScreen } from '../../src/fleet/dashboard/venue-paths.ts';
import type { ScreenContext } from '../../src/fleet/dashboard/screens.ts';
import type { Table } from '../../src/fleet/dashboard/table.ts';
import { startVenueService, VENUE_MIGRATIONS, type VenueService } from '../../src/fleet/venue/index.ts';

const MiB = 1048576;
const PiB = '1125899906842624';
const D = '02:00:00:00:5e:01';
const E = '02:00:00:00:5e:02';

let pg: Postgres;
let broker: Mosquitto;
let db: Db;
let service: VenueService;
const lines: string[] = [];
const routers: Venued[] = [];

/** A router of the test: publishes as sluice's router would (FakeRouter) and hears the commands sent to it. */
class Venued {
  readonly commands: Array<{ cmd: string; args: Record<string, unknown>; id: string }> = [];
  private constructor(
    readonly r: FakeRouter,
    private readonly sub: MqttClient,
  ) {}

  static async connect(name: string): Promise<Venued> {
    const r = await FakeRouter.connect(name, broker.url);
    const sub = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
    const v = new Venued(r, sub);
    sub.on('message', (_topic, payload) => {
      const c = JSON.parse(JSON.parse(payload.toString()).command as string);
      v.commands.push({ cmd: c.cmd, args: c.args, id: c.id });
    });
    await sub.subscribeAsync(`sluice/${name}/cmd`, { qos: 1 });
    routers.push(v);
    return v;
  }

  get name(): string {
    return this.r.name;
  }

  /** The next command `cmd` sent to this router after the `seen` first ones. */
  async next(cmd: string, seen = 0): Promise<{ args: Record<string, unknown>; id: string }> {
    let found: { args: Record<string, unknown>; id: string } | undefined;
    await waitFor(
      () => (found = this.commands.filter((c) => c.cmd === cmd)[seen]) !== undefined,
      20_000,
      `${cmd} at ${this.name}`,
    );
    return found!;
  }

  count(cmd: string): number {
    return this.commands.filter((c) => c.cmd === cmd).length;
  }

  reply(id: string, body: Record<string, unknown>): Promise<void> {
    return this.r.publish('cmd/reply', { id, nonce: 'n', ...body }, 'json');
  }

  claim(mac: string, venue: unknown = 'hall'): Promise<void> {
    return this.r.publish('venue', { kind: 'claim', router: this.name, mac, venue }, 'json');
  }

  /** A sale of `allotment` bytes to `mac` (a `started` session message), dated `at`. */
  async sell(id: string, mac: string, allotment: number, at = Date.now()): Promise<void> {
    const env = this.r.envelope('session', undefined, at);
    await this.r.publish('session', {
      ...env,
      event: 'started',
      session: this.r.session(id, { mac, allotment, remaining: allotment, started_at: at, at }),
      payment: { method: 'x402', reference: `ref-${id}`, amount: '100', asset: 'usdc', at },
    });
  }

  async usage(id: string, mac: string, used: number, remaining: number): Promise<void> {
    const env = this.r.envelope('usage');
    await this.r.publish('usage', {
      ...env,
      part: 0,
      parts: 1,
      fields: ['id', 'mac', 'user', 'metric', 'up', 'down', 'bytes', 'used', 'allotment', 'remaining', 'state'],
      sessions: [[id, mac, null, 'bytes', 0, used, used, used, used + remaining, remaining, 'ACTIVE']],
    });
  }

  status(): Promise<void> {
    return this.r.publish('status', { ...this.r.envelope('status'), online: true, version: '0.1.0', uptime_s: 5 });
  }
}

/**
 * A router an earlier test connected, by name: `routers` is in the order their connections completed, which
 * connections begun together do not keep.
 */
function routerNamed(name: string): Venued {
  const r = routers.find((v) => v.name === name);
  if (r === undefined) throw new Error(`no router ${name} connected yet`);
  return r;
}

/** A release's reply: the holder's figures of its session, as venue-roaming.ts gives them. */
const figures = (session: string, used: number, remaining: number, allotment = used + remaining) => ({
  ok: true,
  result: {
    session,
    metric: 'bytes',
    allotment: String(allotment),
    used: String(used),
    remaining: String(remaining),
    bytes: String(used),
    devices: 1,
    charges: [],
    charge_amounts: {},
  },
});

const leaseRow = async (mac: string) =>
  (
    await db.query<Record<string, unknown>>(
      `SELECT id, state, holder, epoch, remaining::text, sold::text, holder_session FROM venue_leases
       WHERE mac = $1 AND state <> 'ended'`,
      [mac],
    )
  )[0];
const breaches = async (router: string) =>
  (await db.query<{ rule: string }>('SELECT rule FROM venue_breaches WHERE router = $1 ORDER BY rule', [router])).map(
    (r) => r.rule,
  );

test.before(async () => {
  [pg, broker] = await Promise.all([Postgres.create(), Mosquitto.create()]);
  db = await freshDb(pg);
  await migrate(db, VENUE_MIGRATIONS);
  service = await startVenueService({
    db,
    url: broker.url,
    venues: new Map(['ra', 'rb', 'rc', 'rf'].map((n): [string, string] => [n, 'hall'])),
    keys: new Map([['*', 'k']]),
    leaseTtlMs: 5000,
    resendMs: 300,
    chargeEveryMs: 300,
    log: recordingLog(lines, 'fleet venue service'),
  });
  await service.ready;
});
test.after(async () => {
  for (const r of routers) {
    await r.r.close();
    await r['sub'].endAsync(true);
  }
  await service?.stop();
  await db?.close();
  await broker?.close();
  await pg?.close();
});

/** `mac` sold at `seller` (8 MiB, 1 MiB used and reported), then claimed by `to`: the release sent to the seller. */
async function soldAndClaimed(seller: Venued, to: Venued, mac: string, session: string) {
  await seller.sell(session, mac, 8 * MiB);
  await waitFor(async () => (await leaseRow(mac))?.['holder'] === seller.name, 20_000, 'the lease registered');
  await seller.usage(session, mac, MiB, 7 * MiB);
  await waitFor(async () => (await leaseRow(mac))?.['remaining'] === String(7 * MiB), 20_000, 'the usage reported');
  const seen = seller.count('venue_release');
  await to.claim(mac);
  return seller.next('venue_release', seen);
}

test('a release is answered only by its holder at its epoch, within what the lease held', async () => {
  const [ra, rb, rc] = await Promise.all(['ra', 'rb', 'rc'].map((n) => Venued.connect(n)));
  const release = await soldAndClaimed(ra!, rb!, D, '00000000000000a1');
  // ra answers with far more than it sold and than its last report left: rb is opened with the report's figure.
  await ra!.reply(release.id, figures('00000000000000a1', MiB, Number(PiB) - MiB, Number(PiB)));
  const open = await rb!.next('venue_open');
  assert.is(open.args['remaining'], String(7 * MiB), 'what the last report left, not 1 PiB');
  assert.is(open.args['sold'], String(8 * MiB), 'the lease carries what was sold');
  await rb!.reply(open.id, { ok: true, result: { session: { id: '00000000000000b1' } } });
  await waitFor(async () => (await leaseRow(D))?.['state'] === 'held', 20_000, 'held at rb');
  assert.equal(await breaches('ra'), ['release-figures']);

  // rc claims: the release goes to rb, the holder at epoch 2. ra, which sold the session, answers it first.
  const seen = rb!.count('venue_release');
  await rb!.status();
  await rc!.claim(D);
  const toRb = await rb!.next('venue_release', seen);
  assert.is(toRb.args['epoch'], 2);
  await ra!.reply(toRb.id, figures('00000000000000a1', 0, Number(PiB)));
  await ra!.reply(toRb.id, { ok: false, error: { code: 'ERR_SESSION_NOT_FOUND', message: 'x' } });
  await waitFor(async () => (await breaches('ra')).includes('release-not-holder'), 20_000, 'ra named');
  const row = (await leaseRow(D))!;
  assert.equal([row['holder'], row['epoch'], row['state']], ['rb', 2, 'releasing'], 'still rb, not moved nor ended');
  assert.is(rc!.count('venue_open'), 0, 'nothing opened at rc');

  // The holder's own answer moves it, with what its lease left.
  await rb!.reply(toRb.id, figures('00000000000000b1', MiB, 6 * MiB));
  const atRc = await rc!.next('venue_open');
  assert.is(atRc.args['remaining'], String(6 * MiB));
  assert.is(atRc.args['sold'], String(8 * MiB));
  assert.equal(await breaches('rb'), []);
});

test('a report never raises what is left; a top-up does', async () => {
  const [ra, rb] = [routerNamed('ra'), routerNamed('rb')];
  await ra.sell('00000000000000a2', E, 8 * MiB);
  await waitFor(async () => (await leaseRow(E))?.['holder'] === 'ra', 20_000, 'the lease registered');
  await ra.usage('00000000000000a2', E, MiB, 7 * MiB);
  await ra.usage('00000000000000a2', E, MiB, 700 * MiB);
  await waitFor(async () => (await breaches('ra')).includes('report-figures'), 20_000, 'ra named');
  assert.is((await leaseRow(E))!['remaining'], String(7 * MiB));
  // A top-up of 2 MiB (the session's allotment 10 MiB): 2 MiB more left and sold.
  const env = ra.r.envelope('session');
  await ra.r.publish('session', {
    ...env,
    event: 'topup',
    session: ra.r.session('00000000000000a2', { mac: E, allotment: 10 * MiB, used: MiB, remaining: 9 * MiB }),
    payment: { method: 'x402', reference: 'ref-top', amount: '50', asset: 'usdc', at: env.at },
  });
  await waitFor(async () => (await leaseRow(E))!['sold'] === String(10 * MiB), 20_000, 'the top-up counted');
  assert.is((await leaseRow(E))!['remaining'], String(9 * MiB));
  const seen = ra.count('venue_release');
  await rb.claim(E);
  const release = await ra.next('venue_release', seen);
  await ra.reply(release.id, figures('00000000000000a2', MiB, 9 * MiB));
  const open = await rb.next('venue_open', rb.count('venue_open'));
  assert.is(open.args['remaining'], String(9 * MiB), 'the top-up moves with the session');
});

test('a sale dated ahead, or of a device held elsewhere, registers nothing; claims follow the real lease', async () => {
  const [ra, rb, rc, rf] = [routerNamed('ra'), routerNamed('rb'), routerNamed('rc'), await Venued.connect('rf')];
  const F = '02:00:00:00:5e:03';
  const G = '02:00:00:00:5e:04';
  await ra.sell('00000000000000a3', F, 8 * MiB);
  await waitFor(async () => (await leaseRow(F))?.['holder'] === 'ra', 20_000, 'the lease registered');
  // rf, a router of the venue, announces sales of F: one dated 300 days ahead, one now. Neither takes F's session.
  await rf.sell('00000000000000f1', F, Number(PiB), Date.now() + 300 * 86_400_000);
  await rf.sell('00000000000000f2', F, Number(PiB));
  // And of G, which bought nothing anywhere, 300 days ahead.
  await rf.sell('00000000000000f3', G, Number(PiB), Date.now() + 300 * 86_400_000);
  await waitFor(async () => (await breaches('rf')).length === 2, 20_000, 'rf named');
  assert.equal(await breaches('rf'), ['sale-future', 'sale-held-elsewhere']);
  const rows = await db.query('SELECT id FROM venue_leases WHERE id LIKE $1', ['rf/%']);
  assert.is(rows.length, 0, 'no lease of rf');
  // rc's claim of F is for ra's lease; G has none.
  const seenA = ra.count('venue_release');
  await rc.claim(F);
  await ra.next('venue_release', seenA);
  assert.is(rf.count('venue_release'), 0);
  const answers = rb.count('venue_answer');
  await rb.claim(G);
  const said = await rb.next('venue_answer', answers);
  assert.is(said.args['state'], 'none', 'G can buy');
  // The Venues page names rf and what it did.
  const page = await venuesScreen({ db, query: new URLSearchParams() } as unknown as ScreenContext);
  const table = page.sections.find((t): t is Table => typeof t !== 'string' && t.id === 'breaches')!;
  const named = table.rows.filter((r) => r[0] === 'rf').map((r) => r[2]);
  assert.equal(named.sort(), ['sale-future', 'sale-held-elsewhere']);
});

test('revoke and charge replies count only from the router sent to, for its move, once', async () => {
  const [ra, rb, rc] = [routerNamed('ra'), routerNamed('rb'), routerNamed('rc')];
  const stranger = await Venued.connect('x9');
  const H = '02:00:00:00:5e:05';
  await ra.sell('00000000000000a4', H, 8 * MiB);
  await waitFor(async () => (await leaseRow(H))?.['holder'] === 'ra', 20_000, 'the lease registered');
  await ra.usage('00000000000000a4', H, MiB, 7 * MiB);
  await waitFor(async () => (await leaseRow(H))?.['remaining'] === String(7 * MiB), 20_000, 'reported');
  // ra falls silent: its lease expires and rb's claim takes it with ra's last report.
  await new Promise((r) => setTimeout(r, 5500));
  const opens = rb.count('venue_open');
  await rb.claim(H);
  const open = await rb.next('venue_open', opens);
  assert.is(open.args['remaining'], String(7 * MiB));
  const leaseId = String(open.args['lease']);
  await rb.reply(open.id, { ok: true, result: { session: { id: '00000000000000b4' } } });
  await waitFor(async () => (await leaseRow(H))?.['state'] === 'held', 20_000, 'held at rb');

  // Forged revoke replies: a stranger in no venue with 1e12 used; rc with "no such session".
  const revokeId = `venue/revoke/2/${leaseId}`;
  await stranger.reply(revokeId, figures('00000000000000a4', 1e12, 0));
  await rc.reply(revokeId, { ok: false, error: { code: 'ERR_SESSION_NOT_FOUND', message: 'x' } });
  await waitFor(async () => (await breaches('rc')).includes('revoke-not-sent'), 20_000, 'rc named');
  await waitFor(async () => (await breaches('x9')).includes('revoke-not-sent'), 20_000, 'the stranger named');
  const [move] = await db.query<Record<string, unknown>>(
    'SELECT revoked_at, overlap::text FROM venue_moves WHERE lease_id = $1 AND epoch = 2',
    [leaseId],
  );
  assert.equal([move!['revoked_at'], move!['overlap']], [null, '0'], 'nothing booked');
  assert.is(rb.count('venue_charge'), 0, 'nothing charged at rb');

  // ra heard again: revoked; its answer claims 1e12 used: the overlap is at most what was left there (7 MiB).
  const releases = ra.count('venue_release');
  await ra.status();
  const revoke = await ra.next('venue_release', releases);
  assert.is(revoke.args['revoke'], true);
  await ra.reply(revoke.id, figures('00000000000000a4', 1e12, 0));
  const charge = await rb.next('venue_charge');
  assert.is(charge.args['amount'], String(7 * MiB), 'capped to what ra had left');
  assert.ok((await breaches('ra')).includes('revoke-figures'));

  // A forged charge reply settles nothing; rb's own does, once.
  await stranger.reply(charge.id, { ok: true, result: { charged: '0', already: false } });
  await ra.reply(charge.id, { ok: true, result: { charged: '0', already: false } });
  await waitFor(async () => (await breaches('x9')).includes('charge-not-sent'), 20_000, 'the stranger named');
  await waitFor(async () => (await breaches('ra')).includes('charge-not-sent'), 20_000, 'ra named');
  const unsettled = await db.query('SELECT 1 FROM venue_moves WHERE lease_id = $1 AND charged_at IS NULL', [leaseId]);
  assert.is(unsettled.length, 1, 'still owed');
  await rb.reply(charge.id, { ok: true, result: { charged: String(7 * MiB), already: false } });
  await waitFor(
    async () =>
      (await db.query('SELECT 1 FROM venue_moves WHERE lease_id = $1 AND charged = $2', [leaseId, 7 * MiB])).length ===
      1,
    20_000,
    'settled by rb',
  );
});

test('a refused claim is logged once per router, its venue text bounded; a flood of claims is bounded', async () => {
  const stranger = routerNamed('x9');
  const big = 'v'.repeat(256 * 1024);
  for (let i = 0; i < 50; i++) await stranger.claim(`02:00:00:00:6e:${i.toString(16).padStart(2, '0')}`, big);
  await waitFor(async () => (await breaches('x9')).includes('claim-venue'), 20_000, 'the stranger named');
  await waitFor(() => service.stats()['refused']! >= 50, 20_000, 'all refused');
  const logged = lines.filter((l) => l.includes('a claim from a router not in that venue'));
  assert.is(logged.length, 1, 'once');
  assert.ok(logged[0]!.length < 1024, `bounded (${logged[0]!.length} characters)`);
});

test.run();
