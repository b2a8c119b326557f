// tier: daemon
/**
 * The cashu method through kill -9 at any moment (docs/tollgate.md "Custody and crash table"): the real daemon and the
 * lab mint, the daemon killed while a Lightning invoice is asked for, while paid invoices are minted and granted,
 * while ecash tokens are swapped and granted, and while it starts (the ledger's open, its reseal, the resolver's first
 * pass), each at a moment drawn at random, then started again. Every start runs the method (ubus `stats` → `cashu`, the
 * pay page's offer on the LAN endpoint, no "unavailable" in its log); at the end, every sat the mint signed to the
 * router is held and granted once: the ecash held, the sessions' Cashu payments and what the mint issued for the
 * tokens it swapped and the invoices it minted are one figure. The moments come from a seed (SLUICE_KILL_SEED, said in
 * every failure); 30 rounds, or SLUICE_KILL_ROUNDS.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { DaemonLab } from '../daemon/harness.ts';
import { freePort } from '../helpers/net.ts';
import { httpSection } from '../helpers/uci-sections.ts';
import { CashuMint } from '../peers/cashu-mint.ts';
import { CashuStore } from '../../src/payments/cashu/store.ts';
import { prng } from '../../src/prng.ts';
import type { BlobmsgTable } from '../../src/ubus/index.ts';

const test = suite('cashu: kill -9 at random moments, the method runs after every start');
/** The pay page's device (the LAN endpoint knows it by 127.0.0.1) and the ubus buyer of tokens. */
const PAGE = '02:00:00:00:c9:01';
const BUYER = '02:00:00:00:c9:02';
/** Kills while the method works, and while the daemon starts (every START_EVERY-th round); SLUICE_KILL_ROUNDS: more. */
const ROUNDS = Number(process.env.SLUICE_KILL_ROUNDS ?? 30);
const START_EVERY = 6;

const seed = Number(process.env.SLUICE_KILL_SEED ?? Date.now() % 1_000_000);
const random = prng(seed);
const between = (lo: number, hi: number): number => Math.floor(lo + random() * (hi - lo + 1));
const said = (what: string) => `${what} (SLUICE_KILL_SEED=${seed})`;

let mint: CashuMint;
let lab: DaemonLab;
let port: number;
/** Quotes the tests' wallet made to fund its tokens: not the router's. */
const funding = new Set<string>();
/** Every token handed to the daemon, with its amount. */
const tokens: Array<{ token: string; sat: number }> = [];
const kills: string[] = [];

const section = (url: string) => `
config tollgate 'tollgate'
\toption enabled '1'
\toption plan 'time'
\tlist mint '${url}'
\toption price_per_step '2'
\toption min_steps '1'
`;

const lan = (path: string, init?: RequestInit) => fetch(`http://127.0.0.1:${port}${path}`, init);
const askQuote = (steps: number) =>
  lan('/cashu/lightning', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ steps }),
  });

/** The mint quotes the router asked for (every quote but the wallet's own), as the mint holds them. */
const routerQuotes = () => [...mint.ledger.mintQuotes.values()].filter((q) => !funding.has(q.quote));

async function fundToken(sat: number): Promise<string> {
  const before = new Set(mint.ledger.mintQuotes.keys());
  const token = await mint.fundToken(sat);
  for (const id of mint.ledger.mintQuotes.keys()) if (!before.has(id)) funding.add(id);
  return token;
}

/** Every invoice the router showed or wrote paid, and its state asked for (the page's poll drives the mint). */
function payEvery(): Promise<unknown> {
  const unpaid = routerQuotes().filter((q) => q.state === 'UNPAID');
  for (const q of unpaid) mint.payMintQuote(q.quote);
  return Promise.all(unpaid.map((q) => lan(`/cashu/lightning?quote=${q.quote}`).then((r) => r.text())));
}

/** The method runs: its stats, its offer on the LAN endpoint, nothing "unavailable" in the start's log. */
async function assertRunning(): Promise<void> {
  const stats = (await lab.call('stats', {})).cashu as Record<string, unknown>;
  assert.ok(stats.total !== undefined && stats.running !== false, said(`cashu running: ${JSON.stringify(stats)}`));
  const offer = await lan('/cashu/offer');
  const body = await offer.text();
  assert.is(offer.status, 200, said(`the offer after a start: ${body}\n${lab.output}`));
  assert.not.match(lab.output, /payment method cashu unavailable/, said(lab.output));
}

/**
 * Started again if it was killed; the method runs, and what it holds is between what its sessions were paid (granted
 * only once landed) and what the mint signed to it (nothing held that the mint did not sign).
 */
async function restart(): Promise<void> {
  await lab.reconnectClient();
  if (!lab.daemon) await lab.startDaemon();
  await assertRunning();
  const f = await figures();
  assert.ok(f.paid <= f.held && f.held <= f.signed, said(`paid ${f.paid} <= held ${f.held} <= signed ${f.signed}`));
}

/** The longest each kind of work took when it ran to its end: its kills are drawn within that. */
const took = new Map<string, number>();

/**
 * `work` started, and the daemon killed at a moment drawn within the longest that kind of work took when it ran to its
 * end (a third of the draws past it: the writes that follow the answer); measured first, unkilled.
 */
async function killDuring(what: string, work: () => Promise<unknown>): Promise<void> {
  const began = Date.now();
  const known = took.get(what);
  if (known === undefined) {
    await work();
    took.set(what, Date.now() - began);
    return;
  }
  const ms = between(0, Math.ceil(known * 1.5));
  kills.push(`${what} +${ms}/${known} ms`);
  let ended = false;
  const running = work().then(
    () => {
      ended = true;
      took.set(what, Math.max(known, Date.now() - began));
    },
    () => undefined,
  );
  await new Promise((resolve) => setTimeout(resolve, ms));
  await lab.stopDaemon('SIGKILL');
  if (!ended) kills[kills.length - 1] += ' (in flight)';
  // Its ubus call waits on the killed daemon no longer.
  await lab.reconnectClient();
  await running;
}

/** Sat per figure: what the router holds, what its sessions were paid in Cashu, what the mint signed to it. */
async function figures(): Promise<{ held: bigint; paid: bigint; signed: bigint; open: number }> {
  const stats = (await lab.call('stats', {})).cashu as Record<string, unknown>;
  const sessions = (await lab.call('sessions', {})).sessions as Array<Record<string, unknown>>;
  const paid = sessions.reduce((s, x) => s + BigInt(x.paid_total as string), 0n);
  const spent = new Set(mint.spent());
  const swapped = tokens.filter((t) => mint.tokenYs(t.token).every((y) => spent.has(y)));
  const minted = routerQuotes().filter((q) => q.state === 'ISSUED');
  const signed = [...swapped.map((t) => t.sat), ...minted.map((q) => q.amount)].reduce((s, n) => s + BigInt(n), 0n);
  return {
    held: BigInt(stats.total as string),
    paid,
    signed,
    open: (stats.open_swaps as number) + (stats.open_invoices as number),
  };
}

test.before(async () => {
  mint = await CashuMint.start({ autoPay: false });
  port = await freePort();
  lab = await DaemonLab.create({
    pollInterval: 0.5,
    portalSocket: true,
    extraConfig: section(mint.url) + httpSection(port),
  });
  lab.portal.addClient(PAGE, '127.0.0.1');
  lab.portal.addClient(BUYER, '10.0.201.2');
  await lab.startDaemon();
});

test.after(async () => {
  await lab?.close();
  await mint?.stop();
});

test("the daemon's LAN port stays this file's while it is down: another test process cannot take it", async () => {
  await lab.stopDaemon('SIGKILL');
  // Another test file, between the kill and the restart, asks for this very port (helpers/net.ts holdPort).
  const net = JSON.stringify(join(import.meta.dirname, '..', 'helpers', 'net.ts'));
  const picker = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      `import { holdPort } from ${net}; console.log(holdPort(${port}));`,
    ],
    { encoding: 'utf8', timeout: 60_000 },
  );
  assert.is(picker.stdout.trim(), 'false', picker.stdout + picker.stderr);
  await restart();
});

test('kill -9 while invoices are asked for, minted and granted, tokens swapped, and the daemon starts', async () => {
  let works = 0;
  for (let round = 0; round < ROUNDS; round++) {
    if (round % START_EVERY === START_EVERY - 1) {
      // Killed while it starts: the ledger read and resealed, the open intents resolved, the doors opened.
      const ms = between(30, 900);
      kills.push(`idle, then start +${ms} ms`);
      await lab.stopDaemon('SIGKILL');
      await lab.reconnectClient();
      const starting = lab.startDaemon().catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, ms));
      await lab.stopDaemon('SIGKILL');
      await starting;
      await restart();
      continue;
    }
    const kind = works++ % 3;
    if (kind === 0) {
      await killDuring('invoice', () => askQuote(between(1, 4)).then((r) => r.text()));
    } else if (kind === 1) {
      // The invoices paid; the daemon mints each (its poll and its resolver), lands the ecash and grants the session.
      await killDuring('paid', payEvery);
    } else {
      const sat = 2 * between(1, 4);
      const token = await fundToken(sat);
      tokens.push({ token, sat });
      const buy = () => lab.call('purchase', { mac: BUYER, payment: { method: 'cashu', token } as BlobmsgTable });
      await killDuring('token', buy);
    }
    await restart();
  }
  // Every invoice paid at last: each the router wrote is minted, landed and granted, once.
  await payEvery();
  let last = await figures();
  const settled = async () => {
    last = await figures();
    return last.open === 0 && last.held === last.signed && last.paid === last.signed;
  };
  await lab.waitFor(settled, 60_000, 'the ecash settled').catch((err: Error) => {
    const shown = JSON.stringify(last, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}` : v));
    throw new Error(
      said(`every sat signed held and granted once: ${shown}; kills: ${kills.join(', ')}\n${err.message}`),
    );
  });
  assert.ok(last.signed > 0n, 'some ecash came in');
  // The ledger read back as a restart reads it: the same figure, nothing open.
  await lab.stopDaemon();
  const store = await CashuStore.open(join(lab.dir, 'state'));
  try {
    assert.is(store.total(), last.held, said('the ledger holds what the daemon said'));
    assert.is(store.openIntents().length, 0);
  } finally {
    await store.close();
  }
  await restart();
});

test.run();
