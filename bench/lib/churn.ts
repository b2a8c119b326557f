// Customers coming and going while `bench -- portal-cpu` measures (its busy scenario): within one sampled window, five
// new customers buy (each a fresh client the portal lists as a splash-page visitor first, as a café's customer is),
// one of them a small data session that reaches its allotment while it downloads, one a time session that ends in the
// window, three staying with 1 GiB; each fetches like the others while its session lasts (a customer whose session
// ended leaves: what a client left on the splash page costs the portal is not metering's). What each came to is read
// from sluice at the end (`session`): the bench prints it, so a window where an event did not happen is seen.
import { spawn, type ChildProcess } from 'node:child_process';
import { UPSTREAM_IP, type Client } from '../../test/e2e/lab.ts';
import type { Sluice } from '../../test/e2e/sluice.ts';
import { api } from '../../test/e2e/captive-api.ts';

/** What one customer buys, and when in the window (s from its start). */
interface Arrival {
  atS: number;
  grant: { bytes: number } | { seconds: number };
  /** The first download (bytes): past the allotment for the one that reaches it. */
  firstBytes: number;
  /** Fetches of 20 kB after it, 4 s apart (Infinity: until the window ends). */
  more: number;
}

/** A small data session that reaches its allotment, a time session that ends, three that stay. */
const ARRIVALS: readonly Arrival[] = [
  { atS: 1, grant: { bytes: 1024 ** 3 }, firstBytes: 20_000, more: Infinity },
  { atS: 3, grant: { bytes: 256 * 1024 }, firstBytes: 2_000_000, more: 0 },
  { atS: 5, grant: { seconds: 15 }, firstBytes: 20_000, more: 3 },
  { atS: 15, grant: { bytes: 1024 ** 3 }, firstBytes: 20_000, more: Infinity },
  { atS: 25, grant: { bytes: 1024 ** 3 }, firstBytes: 20_000, more: Infinity },
];

/** Fresh clients one busy window takes. */
export const CHURN_CLIENTS = ARRIVALS.length;

/**
 * One client's first download, then `more` times 20 kB 4 s apart (as the metered clients fetch), or until killed. The
 * first is tried again (1 s apart, 10 tries at most) until it brought more than the splash page (a redirect of a few
 * hundred bytes): the grant's reply may come before the gate is open, and a 256 KiB customer whose one download met
 * the splash page would never reach its allotment.
 */
function fetchLoop(c: Client, firstBytes: number, more: number): ChildProcess {
  const get = (bytes: number): string => `curl -s -o /dev/null --max-time 10 http://${UPSTREAM_IP}/bytes/${bytes}`;
  const first =
    `t=0; while [ $t -lt 10 ]; do n=$(curl -s -o /dev/null -w '%{size_download}' --max-time 10 ` +
    `http://${UPSTREAM_IP}/bytes/${firstBytes}); [ "\${n%.*}" -gt ${Math.min(firstBytes, 100_000) - 1} ] && break; ` +
    `sleep 1; t=$((t + 1)); done`;
  const times = Number.isFinite(more) ? `[ $i -lt ${more} ]` : ':';
  return spawn(
    'ip',
    ['netns', 'exec', c.ns, 'sh', '-c', `${first}; i=0; while ${times}; do sleep 4; ${get(20000)}; i=$((i + 1)); done`],
    {
      stdio: 'ignore',
    },
  );
}

/**
 * Runs the arrivals of one window on `clients` (CHURN_CLIENTS fresh ones, listed by the portal already); resolves after
 * the last purchase with the fetch loops it started (the caller kills them) and a function that reads what each
 * session came to.
 */
export async function churn(
  s: Sluice,
  clients: readonly Client[],
): Promise<{ loops: ChildProcess[]; outcome: () => Promise<string> }> {
  const loops: ChildProcess[] = [];
  const t0 = performance.now();
  // Each customer's phone asks the captive API (RFC 8908) as it joins and again once it paid, as phones do: sluice
  // places it by its address (gate/mac-resolver.ts). Counted when the answer is the customer's: captive, then not.
  let placed = 0;
  const captive = async (c: Client): Promise<unknown> => (await api(c, '/captive')).json['captive'];
  for (const [i, a] of ARRIVALS.entries()) {
    const c = clients[i]!;
    const wait = a.atS * 1000 - (performance.now() - t0);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const before = await captive(c);
    await s.callInProcess('grant', { mac: c.mac, ...a.grant });
    loops.push(fetchLoop(c, a.firstBytes, a.more));
    if (before === true && (await captive(c)) === false) placed++;
  }
  const outcome = async (): Promise<string> => {
    const parts: string[] = [];
    for (const [i, a] of ARRIVALS.entries()) {
      const v = (await s.callInProcess('session', { mac: clients[i]!.mac }).catch(() => ({}))) as {
        session?: { state?: string; end_cause?: string; gate?: string };
      };
      const what = 'bytes' in a.grant ? `${Math.round(a.grant.bytes / 1024)} KiB` : `${a.grant.seconds} s`;
      const st = v.session;
      parts.push(`${what}: ${st?.state ?? '?'}${st?.end_cause ? ` (${st.end_cause})` : ''}`);
    }
    return `${parts.join(', ')}; captive API answered ${placed} of ${ARRIVALS.length} customers as theirs`;
  };
  return { loops, outcome };
}
