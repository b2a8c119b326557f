/** The real daemon (test/daemon/harness.ts) configured as a NAS for a real FreeRADIUS, for the radius daemon tests. */
import { suite, type Test } from 'uvu';
import { DaemonLab } from '../../daemon/harness.ts';
import { FreeRadius } from '../../peers/freeradius.ts';
import { freePort } from '../../helpers/net.ts';

export const mac = (n: number) => `02:00:00:00:0b:${n.toString(16).padStart(2, '0')}`;
export const station = (m: string) => m.toUpperCase().replaceAll(':', '-');

export interface RadiusLab {
  radius: FreeRadius;
  lab: DaemonLab;
  coaPort: number;
}

/**
 * A suite whose every test gets a fresh FreeRADIUS and daemon (40 portal clients `mac(1…40)` at 10.0.1.n). No
 * radius.coa_listen, as shipped: the listener is the dual-stack socket on `::` that radclient reaches over IPv4
 * (with coa_listen always set, its replies going nowhere by default was never seen). `extraConfig`
 * is appended to the config (a section of the same name reopens it: `config sluice 'main'` adds main options).
 */
export function radiusDaemonSuite(name: string, extraConfig = ''): Test<RadiusLab> {
  const t = suite<RadiusLab>(name, {} as RadiusLab);
  t.before.each(async (c) => {
    c.radius = await FreeRadius.start();
    c.coaPort = await freePort();
    c.lab = await DaemonLab.create({
      pollInterval: 0.3,
      checkpointInterval: 5,
      maxDevicesPerUser: 1,
      portalSocket: true,
      extraConfig: `
config radius 'radius'
\toption enabled '1'
\toption server '127.0.0.1'
\toption auth_port '${c.radius.authPort}'
\toption acct_port '${c.radius.acctPort}'
\toption secret '${c.radius.secret}'
\toption nas_identifier 'router-test'
\toption nas_ip '127.0.0.1'
\toption interim_interval '10'
\toption coa_port '${c.coaPort}'
\toption timeout '0.3'
\toption retries '1'
\toption backoff_max '2'
${extraConfig}`,
    });
    for (let i = 1; i <= 40; i++) c.lab.portal.addClient(mac(i), `10.0.1.${i}`);
    await c.lab.startDaemon();
  });
  t.after.each(async (c) => {
    await c.lab?.close();
    await c.radius?.close();
  });
  return t;
}

/** FreeRADIUS's linelog lines of one kind (`Start`, `Interim`, `Stop`). */
export const acctLines = (c: RadiusLab, kind: string): string[] =>
  c.radius.acctLines().filter((l) => l.startsWith(`${kind} `));

/**
 * Waits until `m`'s gate is open and the meter has ticked twice since: traffic added after that is billed whatever the
 * machine's load (bytes that pass before the meter's first reading of a new client are its baseline).
 */
export async function meteredFromNow(c: RadiusLab, m: string): Promise<void> {
  await c.lab.waitFor(() => c.lab.clientState(m) === 'Authenticated', 30_000, `gate of ${m}`);
  const ticks = async () => Number(((await c.lab.call('stats')).meter as Record<string, unknown>).ticks);
  const from = await ticks();
  await c.lab.waitFor(async () => (await ticks()) >= from + 2, 60_000, 'two meter ticks');
}
