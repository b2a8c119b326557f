/**
 * The PaymentMethod suite's rigs for the methods that move no money on a chain: `trial` (a free plan once per device
 * per interval, its ledger on flash before the grant), the admin's `grant` (built in; ubus `grant`, its payment
 * the idempotency key) and printed vouchers (`voucher`). What "money" is for them: the sessions handed out and the
 * trial ledger's entries, or the codes used.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DaemonLab } from '../../daemon/harness.ts';
import type { MethodRig, RigPayment } from '../method-suite.ts';

const MiB = 1_048_576n;

async function startLab(extraConfig = ''): Promise<DaemonLab> {
  const lab = await DaemonLab.create({
    pollInterval: 0.3,
    portalSocket: true,
    extraConfig,
  });
  try {
    await lab.startDaemon();
  } catch (err) {
    await lab.close();
    throw err;
  }
  return lab;
}

/** Every session the daemon knows (live and ended). */
async function sessionCount(lab: DaemonLab): Promise<number> {
  return Number((await lab.call('sessions', { limit: 1 } as never)).total);
}

/** A device token as the pay page keeps one (payments/trial/trial.ts: 16-64 of A-Z a-z 0-9 _ -). */
const deviceToken = (): string => randomBytes(18).toString('base64url');

export async function trialRig(): Promise<MethodRig> {
  const lab = await startLab(`
config pricing 'trial'
\toption metric 'bytes'
\toption step_size '1MiB'
\toption price_per_step '0'
\toption min_steps '4'
\toption max_steps '4'
\toption trial_every '86400'
`);
  return {
    lab,
    rules: { ceiling: true, refund: false, pending: false },
    replayCodes: ['ERR_PAYMENT_REPLAYED', 'ERR_TRIAL_USED'],
    plan: { id: 'trial', allotment: 4n * MiB },
    payment: async () => ({ fields: { method: 'trial', device: deviceToken() }, reference: null }),
    badPayment: async () => ({ fields: { method: 'trial', device: 'not a token!' }, reference: null }),
    money: async () => ({
      sessions: await sessionCount(lab),
      remembered: ((await lab.call('stats')).trials as { remembered: number }).remembered,
    }),
    settledAfterEnd: async () => {},
    close: () => lab.close(),
  };
}

export async function grantRig(): Promise<MethodRig> {
  const lab = await startLab();
  const grant = (mac: string, p: RigPayment) =>
    lab.callStatus('grant', { mac, bytes: String(4n * MiB), ...p.fields, method: undefined } as never);
  return {
    lab,
    rules: { ceiling: true, refund: false, pending: false },
    replayCodes: ['ERR_PAYMENT_REPLAYED'],
    // The lab's own bytes plan: what the in-process authorize is quoted (a grant is not priced).
    plan: { id: 'data', allotment: 4n * MiB },
    payment: async () => ({
      fields: { method: 'grant', idempotency_key: `suite-${randomBytes(8).toString('hex')}` },
      reference: null,
    }),
    badPayment: async () => ({ fields: { method: 'grant', idempotency_key: 'k'.repeat(201) }, reference: null }),
    money: async () => ({ sessions: await sessionCount(lab) }),
    settledAfterEnd: async () => {},
    buy: grant,
    close: () => lab.close(),
  };
}

/**
 * Printed vouchers (payments/local-voucher): a batch of the lab's 4 MiB plan printed over ubus at the start, a code
 * per payment; its reference `<batch>/<keyed hash>` computed from the daemon's key. What "money" is: the sessions and
 * the codes the book counts used. The in-process method gets a copy of the daemon's book and key (seedState).
 */
export async function voucherRig(): Promise<MethodRig> {
  const lab = await startLab();
  const made = await lab.call('voucher_create', { plan: 'data', count: 60, steps: 4 } as never);
  const codes = [...(made.codes as string[])];
  const batch = made.batch as string;
  const state = join(lab.dir, 'state');
  const key = Buffer.from(readFileSync(join(state, 'voucher.key'), 'utf8').trim(), 'hex');
  const referenceOf = (code: string) =>
    `${batch}/${createHmac('sha256', key).update(code.replace(/-/g, '')).digest('hex').slice(0, 32)}`;
  return {
    lab,
    rules: { ceiling: true, refund: false, pending: false },
    replayCodes: ['ERR_PAYMENT_REPLAYED'],
    plan: { id: 'data', allotment: 4n * MiB },
    payment: async () => {
      const code = codes.shift();
      if (!code) throw new Error("the rig's batch is used up");
      return { fields: { method: 'voucher', code }, reference: referenceOf(code) };
    },
    badPayment: async () => ({ fields: { method: 'voucher', code: '' }, reference: null }),
    money: async () => ({
      sessions: await sessionCount(lab),
      used: ((await lab.call('voucher_list')).batches as Array<{ used: number }>)[0]!.used,
    }),
    settledAfterEnd: async () => {},
    // The state as the daemon wrote it, the key's seal included: a key without one is sealed by the store's open in
    // the background, a write that would land in the middle of a test's before-and-after look at the files.
    seedState: (stateDir) => {
      for (const f of ['vouchers.log', 'vouchers.log.seal', 'voucher.key', 'voucher.key.seal'])
        copyFileSync(join(state, f), join(stateDir, f));
    },
    close: () => lab.close(),
  };
}
