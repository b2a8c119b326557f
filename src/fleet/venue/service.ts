/**
 * The venue lease service (docs/roaming.md): an MQTT client of its own beside the collector. It hears the routers'
 * claims (`<prefix>/<router>/venue`), their command replies, and their session, usage and status messages (which
 * register and renew leases: heard-reports.ts); it answers with commands signed by each router's command key on
 * `<prefix>/<router>/cmd`. It keeps nothing in memory that a restart would need: every decision is a transaction on the
 * lease's row, and a reply names what it answers in its request id (`venue/<command>/<epoch>/<lease id>`), so a fleet
 * killed between a command and its reply picks the handover up from the row at the next claim.
 */
import { randomBytes } from 'node:crypto';
import { signCommand } from '../../upstream/index.ts';
import type { Log } from '../../log.ts';
import { isReject, parseMessage, type Inbound } from '../collector/index.ts';
import type { Db } from '../db/index.ts';
import * as leases from './leases.ts';
import { revoked, type Revoke } from './revokes.ts';
import { heardReport, type HeardContext } from './heard-reports.ts';
import { breach, type Rule } from './breaches.ts';
import { pruneTrials, trialAsked, trialHold, trialsOf, TRIAL_HOLD_MS, type TrialHold } from './trials.ts';
import { FairQueue } from '../fair-queue.ts';
import { handedOver, listedCharges, sendCharges, settled } from './charges.ts';
import type { Lease } from './leases.ts';
import { decimal, decodeMap, figuresOf, MAC, openArgs } from './figures.ts';
import { OVER_CLAIMS, OVER_MESSAGES, Overflow } from './overflow.ts';
import { connectVenueBroker } from './broker.ts';

/** Messages of one router waiting at the service (claims and everything else), and claims among them. */
export const WAITING_PER_ROUTER = 512;
export const CLAIMS_PER_ROUTER = 64;
/**
 * The service's own database connections (beside the collector's pool): its messages two at a time, plus its sweep.
 * A flood of claims waits for these, never for the connections the collector stores payments with.
 */
export const VENUE_CONNECTIONS = 3;

export interface VenueServiceOptions {
  db: Db;
  url: string;
  prefix?: string;
  username?: string;
  password?: string;
  clientId?: string;
  /** router → venue (parseVenues). */
  venues: ReadonlyMap<string, string>;
  /** The routers' command keys (parseCommandKeys: a router's own, or `*`). */
  keys: ReadonlyMap<string, string>;
  /** A holder not heard for this long loses its lease to the next claim (default 90 s). */
  leaseTtlMs?: number;
  /** A release or open not answered is sent again at the next claim after this long (default 3 s). */
  resendMs?: number;
  /**
   * Messages handled at once, all routers together (default 2). `db` should be the service's own pool (the fleet
   * opens one of VENUE_CONNECTIONS), so that no flood of claims waits on the connections the collector writes with.
   */
  concurrency?: number;
  /** An overlap charge not answered is sent again this often (default 10 s). */
  chargeEveryMs?: number;
  /** A trial claimed is held this long for its router's sale (default TRIAL_HOLD_MS: 30 s). */
  trialHoldMs?: number;
  log: Log;
  now?: () => number;
}

export interface VenueService {
  readonly ready: Promise<void>;
  stats(): Record<string, number>;
  stop(): Promise<void>;
}

export async function startVenueService(o: VenueServiceOptions): Promise<VenueService> {
  const prefix = o.prefix ?? 'sluice';
  const now = o.now ?? Date.now;
  const ttlMs = o.leaseTtlMs ?? 90_000;
  const resendMs = o.resendMs ?? 3000;
  const counters = { claims: 0, releases: 0, opens: 0, moves: 0, charges: 0, refused: 0, errors: 0, dropped: 0 };
  /** The routers whose refused claim was logged (once each). */
  const refusedClaims = new Set<string>();
  const overflow = new Overflow();
  const queue = new FairQueue({
    concurrency: o.concurrency ?? 2,
    perRouter: WAITING_PER_ROUTER,
    claimsPerRouter: CLAIMS_PER_ROUTER,
    onDrop: () => void counters.dropped++,
    onError: (router, err) => {
      counters.errors++;
      o.log.warn('fleet venue: a message was not handled', { router, reason: (err as Error).message });
    },
  });
  const topics = ['venue', 'cmd/reply', 'session', 'usage', 'status'].map((t) => `${prefix}/+/${t}`);
  const { client, ready } = await connectVenueBroker({ ...o, topics });

  const send = (router: string, cmd: string, args: Record<string, unknown>, id: string): void => {
    const key = o.keys.get(router) ?? o.keys.get('*');
    if (key === undefined) {
      o.log.warn('fleet venue: no command key for the router: it cannot take part in its venue', { router });
      return;
    }
    const text = JSON.stringify({ cmd, args, ts: now(), nonce: randomBytes(12).toString('hex'), id });
    client.publish(`${prefix}/${router}/cmd`, JSON.stringify({ command: text, sig: signCommand(key, text) }), {
      qos: 1,
    });
  };
  const requestId = (kind: string, lease: Pick<Lease, 'epoch' | 'id'>): string =>
    `venue/${kind}/${lease.epoch}/${lease.id}`;
  /**
   * The fleet's word to a claimer; `held`: where its session is, and since when (ms); `trials`: plan → when (ms) the
   * device last had that free trial anywhere in the venue; `trial`: the hold on the trial its claim asked for
   * (trials.ts).
   */
  const answer = (
    router: string,
    mac: string,
    venue: string,
    state: string,
    word: { trials: Record<string, number>; trial?: TrialHold | null },
    held?: { holder: string; since: number | null },
  ): void => {
    const since = held?.since === null || held === undefined ? {} : { since: Math.round(held.since) };
    const trial = word.trial ? { trial: word.trial } : {};
    send(
      router,
      'venue_answer',
      { mac, venue, state, trials: word.trials, ...trial, ...(held && { holder: held.holder }), ...since },
      `venue/answer/0/${router}`,
    );
  };
  const open = (lease: Lease, from: string): void => {
    counters.opens++;
    send(lease.holder, 'venue_open', openArgs(lease, from), requestId('open', lease));
  };

  async function onClaim(router: string, body: Record<string, unknown>): Promise<void> {
    const mac = typeof body['mac'] === 'string' ? body['mac'].toLowerCase() : '';
    const venue = o.venues.get(router);
    if (!MAC.test(mac) || body['router'] !== router) return;
    if (venue === undefined || body['venue'] !== venue) {
      counters.refused++;
      const said = JSON.stringify(body['venue'] ?? null).slice(0, 80);
      // Once per router: a router that keeps claiming (every 2 s, or a flood) is named on the Venues page, not the log.
      if (!refusedClaims.has(router) && refusedClaims.size < 10_000) {
        refusedClaims.add(router);
        o.log.warn('fleet venue: a claim from a router not in that venue (logged once per router)', {
          router,
          venue: said,
          listed: venue ?? null,
        });
      }
      return breach(o.db, { router, rule: 'claim-venue', venue: venue ?? null, detail: `claimed for venue ${said}` });
    }
    counters.claims++;
    const own = body['own'] === true;
    const decision = await leases.claim(o.db, venue, router, mac, { now: now(), ttlMs, resendMs, own });
    // A trial asked for is held for the first router that claims it; the others are refused it (trials.ts).
    const free = decision.kind === 'none' || (decision.kind === 'open' && decision.lease.state !== 'moving');
    const holdMs = o.trialHoldMs ?? TRIAL_HOLD_MS;
    const trial = await trialHold(o.db, { venue, mac, router, body, free, holdMs });
    const trials = { trials: await trialsOf(o.db, venue, mac), trial };
    if (decision.kind === 'none') return answer(router, mac, venue, 'none', trials);
    const lease = decision.lease;
    if (decision.kind === 'open') {
      if (lease.state === 'moving') open(lease, lease.holder);
      else answer(router, mac, venue, 'held-here', trials, lease);
      return;
    }
    if (decision.kind === 'release') {
      counters.releases++;
      send(
        lease.holder,
        'venue_release',
        { mac, venue, lease: lease.id, epoch: lease.epoch, session: lease.holderSession, to: router },
        requestId('release', lease),
      );
      return answer(router, mac, venue, 'releasing', trials, lease);
    }
    answer(router, mac, venue, 'held', trials, lease);
  }

  /**
   * A router's reply to a command of the service's. Its id names the command, the epoch and the lease; it counts only
   * from the router it was sent to, for what it was sent about (leases.ts, revokes.ts, charges.ts decide it under the
   * row): a reply from any other router is refused and the router named (breaches.ts).
   */
  async function onReply(router: string, body: Record<string, unknown>): Promise<void> {
    const id = typeof body['id'] === 'string' ? body['id'] : '';
    const m = /^venue\/(release|open|revoke|charge)\/(\d+)\/([A-Za-z0-9._-]+\/[0-9a-f]{16})(?:@(\d+))?$/.exec(id);
    if (m === null) return;
    const [, kind, epochText, leaseId, toText] = m as unknown as [string, string, string, string, string | undefined];
    const epoch = Number(epochText);
    const result = (body['result'] ?? null) as Record<string, unknown> | null;
    const code = String((body['error'] as Record<string, unknown> | undefined)?.['code'] ?? '');
    const refuse = async (rule: Rule, detail: string): Promise<void> => {
      counters.refused++;
      await breach(o.db, {
        router,
        rule,
        venue: o.venues.get(router) ?? null,
        detail: `${leaseId} #${epoch}: ${detail}`,
      });
    };
    if (kind === 'open') {
      const session = result?.['session'] as Record<string, unknown> | undefined;
      if (body['ok'] !== true || typeof session?.['id'] !== 'string') return;
      await leases.opened(o.db, leaseId, epoch, router, session['id']);
      return reconcile(leaseId);
    }
    if (kind === 'charge') {
      // The id's epoch is the move charged; after `@` the lease epoch (its holder) it was sent to.
      if (toText === undefined) return refuse('charge-not-sent', 'a charge reply naming no holder');
      const ended = typeof result?.['ended'] === 'string' ? result['ended'] : null;
      if (body['ok'] !== true) {
        o.log.warn('fleet venue: a charge was refused (sent again)', { lease: leaseId, router, code });
        return;
      }
      // A session that moved on without it: its handover reply settles it, or sends it to the next holder.
      if (ended === 'moved') return;
      const charged = decimal(result?.['charged']);
      if (!(await settled(o.db, { router, leaseId, move: epoch, epoch: Number(toText), charged })))
        return refuse('charge-not-sent', `charge of move ${epoch} answered as ${String(result?.['charged'])}`);
      return;
    }
    if (kind === 'revoke') {
      let r: Revoke;
      const said = { router, leaseId, epoch };
      if (body['ok'] === true) r = await revoked(o.db, { ...said, used: decimal(result?.['used']) });
      else if (code === 'ERR_SESSION_NOT_FOUND') r = await revoked(o.db, { ...said, used: null });
      else return;
      if (r.kind === 'not-sent') return refuse('revoke-not-sent', `${code || 'ok'}, used ${String(result?.['used'])}`);
      if (r.kind === 'booked' && r.capped)
        await refuse('revoke-figures', `used ${String(result?.['used'])}: overlap capped to ${r.overlap}`);
      // The revoked holder held the lease at the epoch before the move: what it was charged is settled by its list.
      await handedOver(o.db, leaseId, epoch - 1, listedCharges(result));
      // What the old holder served after its last report is taken off the session where it is now: never free.
      if (r.kind === 'booked' && r.overlap !== '0') await reconcile(leaseId);
      return;
    }
    if (body['ok'] !== true) {
      if (code !== 'ERR_VENUE_DEVICE_PRESENT' && code !== 'ERR_SESSION_NOT_FOUND') return;
      const gone = code === 'ERR_SESSION_NOT_FOUND';
      const row = await leases.notReleased(o.db, router, leaseId, epoch, gone, now());
      if (row === null) {
        if (!(await leases.holdsAt(o.db, router, leaseId, epoch))) await refuse('release-not-holder', code);
        return;
      }
      // The claimer hears why: the device is still at the holder (a copy of its MAC gets nothing), or nothing is left.
      if (row.target) {
        const trials = { trials: await trialsOf(o.db, row.venue, row.mac) };
        const held = gone ? undefined : { holder: router, since: null };
        answer(row.target, row.mac, row.venue, gone ? 'none' : 'held', trials, held);
      }
      return;
    }
    const f = figuresOf(result);
    if (f === null) return;
    const r = await leases.released(o.db, router, leaseId, epoch, f, now());
    if (r.kind === 'not-holder') return refuse('release-not-holder', `remaining ${f.remaining}`);
    await handedOver(o.db, leaseId, epoch, listedCharges(result));
    if (r.kind !== 'moved') return;
    if (r.capped)
      await refuse(
        'release-figures',
        `remaining ${f.remaining}, allotment ${f.allotment}: moved with ${r.lease.remaining} (the lease's)`,
      );
    counters.moves++;
    open(r.lease, router);
  }

  /** Sends every charge booked and not yet answered (of one lease, or all) to where its lease is now (charges.ts). */
  const reconcile = (leaseId?: string): Promise<void> =>
    sendCharges(o.db, leaseId, (router, args) => {
      counters.charges++;
      send(
        router,
        'venue_charge',
        args,
        `${requestId('charge', { epoch: Number(args['move']), id: String(args['lease']) })}@${Number(args['epoch'])}`,
      );
    });
  let sweeping = false;
  let prunedAt = 0;
  const sweep = setInterval(() => {
    if (sweeping || !client.connected) return;
    sweeping = true;
    const pruning = now() - prunedAt >= 3_600_000; // the trials past their memory go once an hour
    if (pruning) prunedAt = now();
    Promise.all([reconcile(), pruning ? pruneTrials(o.db) : undefined])
      .catch((err: unknown) =>
        o.log.warn('fleet venue: the charges were not sent or old trials not pruned', {
          reason: (err as Error).message,
        }),
      )
      .finally(() => (sweeping = false));
  }, o.chargeEveryMs ?? 10_000);
  sweep.unref();

  const heard: HeardContext = {
    db: o.db,
    venues: o.venues,
    now,
    refused: () => void counters.refused++,
    ttlMs,
    namedTtl: new Map(),
    revoke: (router, h) => {
      const args = { mac: h.mac, venue: h.venue, lease: h.leaseId, epoch: h.epoch, to: h.holder, revoke: true };
      send(
        router,
        'venue_release',
        { ...args, ...(h.session !== null && { session: h.session }) },
        requestId('revoke', { epoch: h.epoch, id: h.leaseId }),
      );
    },
  };
  const onReport = (m: Inbound): Promise<void> => heardReport(heard, m);

  /** Busy answers sent this second, per router: a flood's refusals are counted, a few of them answered. */
  let busyAnswers = new Map<string, number>();
  /**
   * A claim beyond its router's bound: counted in `fleet_rejects` and answered `busy` (ERR_VENUE_BUSY), at most
   * CLAIMS_PER_ROUTER answers a second per router; the router sells as when the fleet cannot be reached.
   */
  const busy = (router: string, topic: string, body: Record<string, unknown>, mac: string): void => {
    overflow.add(router, topic, OVER_CLAIMS(CLAIMS_PER_ROUTER));
    const venue = o.venues.get(router);
    const answered = busyAnswers.get(router) ?? 0;
    if (venue === undefined || body['venue'] !== venue || !MAC.test(mac) || answered >= CLAIMS_PER_ROUTER) return;
    busyAnswers.set(router, answered + 1);
    const error = {
      code: 'ERR_VENUE_BUSY',
      message: `over ${CLAIMS_PER_ROUTER} claims of this router waiting at the fleet: claim again later`,
    };
    send(router, 'venue_answer', { mac, venue, state: 'busy', error, trials: {} }, `venue/answer/0/${router}`);
  };
  const flushing = setInterval(() => {
    busyAnswers = new Map();
    overflow
      .flush(o.db)
      .catch((err: unknown) =>
        o.log.warn('fleet venue: the refused messages were not counted yet', { reason: (err as Error).message }),
      );
  }, 1000);
  flushing.unref();

  // Every message is a task on its router's queue (fair-queue.ts): one router's flood waits behind itself, and what
  // it sends beyond its bound is refused and counted, never queued.
  client.on('message', (topic, payload) => {
    const reply = topic.endsWith('/cmd/reply');
    const parts = topic.split('/');
    const router = (reply ? parts[parts.length - 3] : parts[parts.length - 2]) ?? '';
    const suffix = reply ? 'reply' : parts[parts.length - 1];
    const over = (): void => overflow.add(router, topic, OVER_MESSAGES(WAITING_PER_ROUTER));
    if (suffix === 'venue' || suffix === 'reply') {
      const body = decodeMap(payload);
      if (body === null) return;
      if (suffix === 'reply') {
        if (queue.push(router, null, () => onReply(router, body)) === 'dropped') over();
        return;
      }
      // A claim for a device already waiting is that one claim (one that asks for a trial: one with the same plan).
      const mac = typeof body['mac'] === 'string' ? body['mac'].slice(0, 32).toLowerCase() : '';
      const trial = trialAsked(body)?.plan;
      const key = `claim ${mac}${trial ? ` trial ${trial}` : ''}`;
      if (queue.push(router, key, () => onClaim(router, body)) === 'dropped') busy(router, topic, body, mac);
      return;
    }
    const m = parseMessage(prefix, topic, payload, now());
    if (!isReject(m) && queue.push(m.router, null, () => onReport(m)) === 'dropped') over();
  });

  return {
    ready,
    stats: () => ({ ...counters }),
    stop: async () => {
      clearInterval(sweep);
      clearInterval(flushing);
      await client.endAsync();
      await queue.drained();
      await overflow.flush(o.db).catch(() => undefined);
    },
  };
}
