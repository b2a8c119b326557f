// tier: peers; needs radclient
/**
 * With the real daemon (dist/sluice.mjs):
 * - mqtt.queue_dir under /proc hung the start (Node's recursive mkdir spins there) with a meter that never ticked, and
 *   a reload accepted it with a warning. Now it is a problem of the file: the mqtt section is off, the rest runs, and
 *   the start and the reload say so.
 * - a reload that moved the Disconnect/CoA listener onto a port in use answered as if all was well while the listener
 *   was off. Now the old listener keeps serving and the reply lists radius.coa_port.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createSocket } from 'node:dgram';
import { DaemonLab } from '../daemon/harness.ts';
import { radclient } from '../peers/freeradius.ts';
import { freePort } from '../helpers/net.ts';

type Problem = { path: string; reason: string; effect: string | null };

const ticks = async (lab: DaemonLab): Promise<number> =>
  Number(((await lab.call('stats')).meter as Record<string, unknown>).ticks);

test(
  'mqtt.queue_dir under /proc: the daemon starts without ' + 'mqtt, meters, and says why at start and at a reload',
  async () => {
    const lab = await DaemonLab.create({
      portalSocket: true,
      pollInterval: 0.3,
      extraConfig: `
config mqtt 'mqtt'
\toption enabled '1'
\toption url 'mqtt://127.0.0.1:1'
\toption queue_dir '/proc/sluice-queue'
`,
    });
    try {
      await lab.startDaemon();
      const stats = await lab.call('stats');
      const problems = stats.config_problems as Problem[];
      assert.ok(
        problems.some((p) => p.path === 'mqtt.queue_dir' && p.effect === 'section-disabled'),
        JSON.stringify(problems),
      );
      const from = await ticks(lab);
      await lab.waitFor(async () => (await ticks(lab)) >= from + 2, 60_000, 'two meter ticks');
      const granted = await lab.call('grant', { mac: '02:00:00:00:10:01', seconds: 60 });
      assert.ok(granted.session, 'it serves');
      const reply = await lab.call('reload');
      assert.ok(
        (reply.problems as Problem[]).some((p) => p.path === 'mqtt.queue_dir' && /proc/.test(p.reason)),
        JSON.stringify(reply),
      );
    } finally {
      await lab.close();
    }
  },
);

test(
  'a reload that moves the Disconnect/CoA port onto a port in use lists radius.coa_port and keeps the old ' +
    'listener',
  async () => {
    const portA = await freePort();
    const radius = (coaPort: number): string => `
config radius 'radius'
\toption enabled '1'
\toption server '127.0.0.1'
\toption acct_port '9'
\toption auth_port '9'
\toption secret 'das-secret'
\toption nas_identifier 'router-test'
\toption coa_port '${coaPort}'
`;
    const lab = await DaemonLab.create({ portalSocket: true, extraConfig: radius(portA) });
    // The port the reload moves to, taken like the daemon would bind it (the default: all addresses, dual-stack).
    const squatter = createSocket({ type: 'udp6' });
    await new Promise<void>((r) => squatter.bind(0, '::', () => r()));
    const portB = squatter.address().port;
    try {
      await lab.startDaemon();
      lab.writeConfig(radius(portB));
      const reply = await lab.call('reload');
      const problems = reply.problems as Problem[];
      const coa = problems.find((p) => p.path === 'radius.coa_port');
      assert.ok(coa, `the reply lists the listener that could not move: ${JSON.stringify(reply)}`);
      assert.match(coa.reason, /EADDRINUSE/);
      assert.match(coa.reason, new RegExp(`still listening on UDP \\*:${portA}`));
      const stats = await lab.call('stats');
      assert.ok(
        (stats.config_problems as Problem[]).some((p) => p.path === 'radius.coa_port'),
        'stats shows it too',
      );
      // The old listener still answers.
      const r = await radclient(`127.0.0.1:${portA}`, 'disconnect', 'das-secret', `Acct-Session-Id="nope"`, {
        timeoutS: 3,
      });
      assert.match(r.output, /Received Disconnect-NAK/, r.output);
      // Once the port is free, a reload moves it and lists nothing.
      await new Promise<void>((res) => squatter.close(() => res()));
      const again = await lab.call('reload');
      assert.equal(
        (again.problems as Problem[]).filter((p) => p.path === 'radius.coa_port'),
        [],
      );
      const moved = await radclient(`127.0.0.1:${portB}`, 'disconnect', 'das-secret', `Acct-Session-Id="nope"`, {
        timeoutS: 3,
      });
      assert.match(moved.output, /Received Disconnect-NAK/, moved.output);
    } finally {
      try {
        squatter.close();
      } catch {
        /* closed above */
      }
      await lab.close();
    }
  },
);

test.run();
