/**
 * The ubus methods of roaming within a venue (docs/roaming.md), admin-only: `venue_claim` (a hook or the pay page: a
 * device is here without a session), and the three the fleet's lease service sends as signed MQTT commands
 * (`venue_answer`, `venue_release`, `venue_open`, `venue_charge`), which the command channel runs through this same
 * table.
 */
import { SluiceError } from '../errors.ts';
import type { ArgSpecs, ArgsOf } from './args.ts';
import { method } from './method.ts';
import type { SluiceBackend } from './backend.ts';
import type { BlobmsgTable } from '../ubus/index.ts';
import { sessionView } from './view.ts';
import { toBlobmsgTable } from './plain.ts';

const mac = { kind: 'mac', required: true } as const;
const name = { kind: 'string', maxLength: 64 } as const;
const ref = { kind: 'string', maxLength: 200 } as const;

function roaming(backend: SluiceBackend) {
  const venue = backend.venue;
  if (!venue) throw new SluiceError('ERR_VENUE_REFUSED', 'roaming is not running on this router');
  return venue;
}

/** Checked arguments as the plain values the venue part reads (bigints as decimal text). */
const plain = (a: object): Record<string, unknown> =>
  Object.fromEntries(Object.entries(a).map(([k, v]) => [k, typeof v === 'bigint' ? v.toString() : v]));

export const VENUE_METHODS = {
  venue_claim: method({
    args: { mac },
    adminOnly: true,
    handler: (a, backend) => toBlobmsgTable({ ...roaming(backend).claim(a.mac) }),
  }),
  venue_answer: method({
    args: {
      mac,
      venue: name,
      state: { kind: 'string', maxLength: 16 },
      holder: name,
      since: { kind: 'count' },
      // Plan → when (ms) the device last had that free trial in the venue.
      trials: { kind: 'table' },
      // The venue's hold on the trial the claim asked for: {plan, reserved, until?} (venue-trials.ts).
      trial: { kind: 'table' },
    },
    adminOnly: true,
    handler: (a, backend) => roaming(backend).answer(plain(a)),
  }),
  venue_release: method({
    args: {
      mac,
      venue: name,
      lease: ref,
      epoch: { kind: 'count' },
      session: name,
      to: name,
      revoke: { kind: 'boolean' },
    },
    adminOnly: true,
    handler: async (a, backend) => toBlobmsgTable(await roaming(backend).release(plain(a))),
  }),
  venue_charge: method({
    args: {
      mac,
      venue: name,
      lease: ref,
      epoch: { kind: 'count' },
      move: { kind: 'count' },
      session: name,
      metric: { kind: 'string', oneOf: ['bytes', 'seconds'] },
      amount: { kind: 'count' },
      bytes: { kind: 'count' },
    },
    adminOnly: true,
    handler: async (a, backend) => toBlobmsgTable(await roaming(backend).charge(plain(a))),
  }),
  venue_open: method({
    args: {
      mac,
      venue: name,
      lease: ref,
      epoch: { kind: 'count' },
      from: name,
      metric: { kind: 'string', oneOf: ['bytes', 'seconds'] },
      remaining: { kind: 'count' },
      sold: { kind: 'count' },
      expires_at: { kind: 'count' },
      rate_down: { kind: 'count' },
      rate_up: { kind: 'count' },
      devices: { kind: 'count' },
      user: { kind: 'string', maxLength: 253 },
      plan: name,
    },
    adminOnly: true,
    async handler(a: ArgsOf<ArgSpecs>, backend): Promise<BlobmsgTable> {
      const { session } = await roaming(backend).open(plain(a));
      return { session: sessionView(session, backend.now()) };
    },
  }),
};
