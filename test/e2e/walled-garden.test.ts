// tier: lab
/**
 * The walled garden on the real openNDS lab (sluice-walled-garden.test.ts: the same with sluice as the gate): the
 * router's dnsmasq names two public-looking upstream addresses (garden.lab → 198.51.100.2, garden-other.lab →
 * 198.51.100.3, the same server); sluice resolves `main.walled_garden` through it. An unpaid client reaches the listed
 * host and not the other (the portal answers it with its redirect); the name added to the list and the config
 * reloaded (no restart), the unpaid client reaches both; names resolving to a private upstream address (upstream.lab →
 * 10.77.1.2) and to the router (router.lab → 10.77.0.1) never enter the set and are logged as refused; a paid client
 * reaches both whatever the list.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { Lab, run, waitFor, type Client } from './lab.ts';
import { LAB_PORTAL, LabRun, dumpLogs, figure, prerequisites } from './scenario.ts';
import { skipTest } from '../helpers/skip.ts';
import { Sluice } from './sluice.ts';

const pre = prerequisites();
const lab = new LabRun();
const { L, S, scenario } = lab;
const LISTED = '198.51.100.2';
const OTHER = '198.51.100.3';
const PRIVATE_UPSTREAM = '10.77.1.2';

if (pre.lab) {
  skipTest(test, 'e2e walled garden scenarios', pre.lab, { ciInstalls: true });
} else {
  test.before(async () => {
    lab.lab = await Lab.up({ rate: null, clients: 2, ...(LAB_PORTAL === 'sluice' && { sluice: true }) });
    // sluice resolves through the router's resolver, as on OpenWrt (dnsmasq on the LAN address here).
    writeFileSync(`/etc/netns/${lab.lab.rtNs}/resolv.conf`, '# sluice lab\nnameserver 10.77.0.1\n');
    figure(`lab ${lab.lab.id}: portal ${lab.lab.portal}`);
  });
  test.after(async () => {
    if (lab.failed) dumpLogs(lab.lab, lab.sluice ? () => lab.S().logTail() : null);
    await lab.sluice?.stop();
    await lab.lab?.down();
  });
}

/** One GET of the upstream's /ping at `ip` from the client: the HTTP status (200: the upstream; 307: the splash). */
async function status(c: Client, ip: string): Promise<number> {
  const r = await run('ip', [
    ...['netns', 'exec', c.ns, 'curl', '-s', '-o', '/dev/null', '--max-time', '3', '--connect-timeout', '3'],
    ...['-w', '%{http_code}', `http://${ip}/ping`],
  ]);
  return Number(r.stdout.trim() || 0);
}

/**
 * A customer's first page (the unlisted host, which the portal intercepts): openNDS lists the client from then on;
 * sluice's own gate lists no one.
 */
async function visitPortal(c: Client): Promise<void> {
  if (L().portal === 'sluice') return;
  await waitFor(`openNDS to list ${c.mac}`, 30_000, async () => {
    await status(c, OTHER);
    return (await L().portalClient(c.mac)) ? true : undefined;
  });
}

const reaches = (c: Client, ip: string, want: number) =>
  waitFor(
    `${c.mac} → ${ip} answering ${want}`,
    15_000,
    async () => ((await status(c, ip)) === want ? true : undefined),
    500,
  );

scenario('sluice starts with garden.lab in the walled garden', pre.daemon, async () => {
  lab.sluice = await Sluice.start(L(), { pollInterval: 1, mainOptions: [`\tlist walled_garden 'garden.lab'`] });
  await visitPortal(L().client(1));
});

scenario('1 an unpaid client reaches the listed host and not the other', pre.daemon, async () => {
  const c = L().client(1);
  await reaches(c, LISTED, 200);
  assert.is(await status(c, OTHER), L().unpaidHttpStatus, 'the unlisted host: the portal answers');
  assert.is(await L().portalState(c.mac), 'Preauthenticated');
});

scenario('2 the other name added and the config reloaded: reached without a restart', pre.daemon, async () => {
  const conf = readFileSync(S().config, 'utf8');
  writeFileSync(
    S().config,
    conf.replace(
      `\tlist walled_garden 'garden.lab'`,
      `\tlist walled_garden 'garden.lab'\n\tlist walled_garden 'garden-other.lab'`,
    ),
  );
  await S().call('reload', {});
  const c = L().client(1);
  await reaches(c, OTHER, 200);
  assert.is(await status(c, LISTED), 200);
  // Taken out again: the address leaves at once (its name is no longer listed).
  writeFileSync(S().config, conf);
  await S().call('reload', {});
  await reaches(c, OTHER, L().unpaidHttpStatus);
});

scenario('3 names resolving to a private upstream and to the router never enter the set', pre.daemon, async () => {
  const conf = readFileSync(S().config, 'utf8');
  writeFileSync(
    S().config,
    conf.replace(
      `\tlist walled_garden 'garden.lab'`,
      `\tlist walled_garden 'garden.lab'\n\tlist walled_garden 'upstream.lab'\n\tlist walled_garden 'router.lab'`,
    ),
  );
  await S().call('reload', {});
  await waitFor('both refusals logged', 15_000, async () => {
    const log = S().logTail(400);
    return /address refused host=upstream\.lab address=10\.77\.1\.2/.test(log) &&
      /address refused host=router\.lab address=10\.77\.0\.1/.test(log)
      ? true
      : undefined;
  });
  const set = await run('ip', ['netns', 'exec', L().rtNs, 'nft', 'list', 'set', 'inet', 'sluice_garden', 'v4']);
  assert.match(set.stdout, /198\.51\.100\.2/);
  assert.not.match(set.stdout, /10\.77\./, set.stdout);
  const c = L().client(1);
  assert.is(await status(c, PRIVATE_UPSTREAM), L().unpaidHttpStatus, 'the private upstream: the portal answers');
  writeFileSync(S().config, conf);
  await S().call('reload', {});
});

scenario('4 a paid client reaches both', pre.daemon, async () => {
  const c = L().client(2);
  await visitPortal(c);
  await S().call('grant', { mac: c.mac, seconds: 600 });
  await waitFor('the gate to open', 15_000, async () =>
    (await L().portalState(c.mac)) === 'Authenticated' ? true : undefined,
  );
  assert.is(await status(c, LISTED), 200);
  assert.is(await status(c, OTHER), 200);
});

test.run();
