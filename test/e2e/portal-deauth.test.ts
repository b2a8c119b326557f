// tier: lab
/**
 * A gate the portal closed by itself, on the real openNDS with the package's BinAuth: an admin's `ndsctl deauth`
 * (openNDS's idle and session timeouts go through the same BinAuth call: `*_deauth`). The BinAuth empties the client's
 * record, sluice's watch of that directory (src/portal/binauth-watch.ts) reports it, and the gate of the client, who
 * still pays, is opened again at the next tick: no listing of the portal, where before the report a paying client
 * whose counters stopped waited for a stall listing (openNDS runs a script per listed client for it).
 * SLUICE_E2E_LAB_PORTAL=opennds10 runs it on openNDS 10.3.1 (opennds10-portal-deauth.test.ts).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Lab, OPENNDS10, waitFor } from './lab.ts';
import { LabRun, dumpLogs, figure, prerequisites } from './scenario.ts';
import { skipTest } from '../helpers/skip.ts';
import { Sluice } from './sluice.ts';

const pre = prerequisites();
const lab = new LabRun();
const { L, S, scenario } = lab;

if (pre.lab) {
  skipTest(test, 'e2e portal-deauth scenarios', pre.lab, { ciInstalls: !OPENNDS10 });
} else {
  test.before(async () => {
    lab.lab = await Lab.up({ rate: null, binauth: true });
    figure(`lab ${lab.lab.id}: portal ${lab.lab.portal}, the package's BinAuth`);
  });
  test.after(async () => {
    if (lab.failed) dumpLogs(lab.lab, lab.sluice ? () => lab.S().logTail() : null);
    await lab.sluice?.stop();
    await lab.lab?.down();
  });
}

interface MeterStats {
  meter?: {
    portal_listings?: number;
    portal_listings_by_reason?: Record<string, number>;
    portal_deauths_watched?: boolean;
    portal_deauths_reported?: number;
  };
  gates?: { reopened?: number };
}

scenario('sluice daemon starts (kernel counters, the package defaults)', pre.daemon, async () => {
  lab.sluice = await Sluice.start(L(), { pollInterval: 2 });
});

scenario('1 the portal deauths a paying client by itself: its gate is open again, no listing', pre.daemon, async () => {
  const c = L().client(1);
  await L().visitPortal(c);
  await S().call('grant', { mac: c.mac, bytes: 1024 ** 3 });
  await waitFor(`the gate of ${c.mac} to open`, 15_000, async () =>
    (await L().fetch(c, '/ping', 2)).http === 200 ? true : undefined,
  );
  // The BinAuth's first run (this auth) made its directory; sluice watches it from its next look (10 s at most).
  const watched = async (): Promise<MeterStats | undefined> => {
    const stats = (await S().call('stats', {})) as MeterStats;
    return stats.meter?.portal_deauths_watched === true ? stats : undefined;
  };
  await waitFor('sluice to watch the BinAuth', 15_000, watched, 500);
  // Two ticks more: the opening's first reading is in, and nothing else is due.
  await new Promise((r) => setTimeout(r, 5000));
  const before = (await watched())!;
  const r = await L().ndsctl('deauth', c.mac);
  assert.is(r.code, 0, `ndsctl deauth: ${r.stdout}${r.stderr}`);
  const deauthed = Date.now();
  // sluice may open it again before any look of the harness sees it closed: its own count of re-opens says it. The
  // phone goes on using the network meanwhile (openNDS 9.10 lists it again, Preauthenticated, once it sees traffic).
  const reopened = async (): Promise<boolean> =>
    (((await S().call('stats', {})) as MeterStats).gates?.reopened ?? 0) > (before.gates?.reopened ?? 0);
  await waitFor(
    `sluice to open the gate of ${c.mac} again`,
    30_000,
    async () => ((await L().fetch(c, '/ping', 1)).http === 200 && (await reopened()) ? true : undefined),
    200,
  );
  const back = Date.now() - deauthed;
  const after = (await S().call('stats', {})) as MeterStats;
  const listings = (after.meter?.portal_listings ?? NaN) - (before.meter?.portal_listings ?? NaN);
  const why = JSON.stringify(after.meter?.portal_listings_by_reason ?? {});
  figure(
    `1 ndsctl deauth ${c.mac}: open again ${back} ms later; ${listings} listings of the portal meanwhile (${why})`,
  );
  assert.is((await L().fetch(c, '/ping', 3)).http, 200, 'the paying client gets through');
  assert.is(listings, 0, 'the BinAuth told: no listing');
  assert.ok((after.meter?.portal_deauths_reported ?? 0) > (before.meter?.portal_deauths_reported ?? 0));
  assert.is((after.gates?.reopened ?? 0) - (before.gates?.reopened ?? 0), 1, 'sluice opened it again');
  const session = (await S().call('session', { mac: c.mac })) as { session?: { state?: string } };
  assert.is(session.session?.state, 'ACTIVE');
});

test.run();
