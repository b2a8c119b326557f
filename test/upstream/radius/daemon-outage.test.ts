// tier: peers; needs freeradius
/**
 * The outage test with the real daemon (dist/sluice.mjs) and a real FreeRADIUS: sessions end while the server is down,
 * the daemon is killed (-9) during the outage, and every Stop arrives exactly once after recovery.
 */
import * as assert from 'uvu/assert';
import { acctLines, mac, radiusDaemonSuite, type RadiusLab } from './daemon-lab.ts';

const t = radiusDaemonSuite('radius daemon outage');

t(
  'outage: Stops made while FreeRADIUS is down, across a kill -9, each arrive exactly once after recovery',
  async (c: RadiusLab) => {
    const { lab, radius } = c;
    const ids: string[] = [];
    for (let i = 10; i < 20; i++)
      ids.push(
        ((await lab.call('grant', { mac: mac(i), seconds: 3600 })).session as Record<string, unknown>).id as string,
      );
    await lab.waitFor(() => acctLines(c, 'Start').length >= 10, 10_000, '10 Starts');
    await radius.stop();
    // While down: 5 terminated, 5 new short sessions start and expire by time.
    for (let i = 10; i < 15; i++) await lab.call('terminate', { mac: mac(i) });
    for (let i = 20; i < 25; i++)
      ids.push(
        ((await lab.call('grant', { mac: mac(i), seconds: 1 })).session as Record<string, unknown>).id as string,
      );
    await lab.waitFor(async () => (await lab.session(mac(24))).state === 'EXPIRED', 10_000, 'short sessions expired');
    await new Promise((r) => setTimeout(r, 500));
    await lab.stopDaemon('SIGKILL');
    await lab.startDaemon();
    // Still down after the restart: 2 more end.
    for (let i = 15; i < 17; i++) await lab.call('terminate', { mac: mac(i) });
    const stats = (await lab.call('stats')).upstream as Record<string, Record<string, Record<string, unknown>>>;
    assert.ok(Number(stats.radius!.accounting!.queued) >= 2, 'records wait in the queue');
    await radius.start();
    const produced = 12;
    await lab.waitFor(() => acctLines(c, 'Stop').length >= produced, 30_000, `${produced} Stops delivered`);
    // A little longer: a duplicate would show up now.
    await new Promise((r) => setTimeout(r, 3000));
    const stops = acctLines(c, 'Stop');
    const perSession = new Map<string, number>();
    for (const l of stops) perSession.set(l.split(' ')[2]!, (perSession.get(l.split(' ')[2]!) ?? 0) + 1);
    const delivered = perSession.size;
    const duplicated = stops.length - delivered;
    console.log(
      `\n# outage test: Stops produced ${produced}, delivered ${delivered}, duplicated ${duplicated}; ` +
        `Starts ${acctLines(c, 'Start').length} for 15 sessions`,
    );
    if (duplicated > 0) {
      // Which window let it through: one record sent twice (same Event-Timestamp, other Acct-Delay-Time) or two Stops
      // made.
      const twice = [...perSession].filter(([, n]) => n > 1).map(([id]) => id);
      for (const r of radius
        .detail()
        .filter((d) => d['Acct-Status-Type'] === 'Stop' && twice.includes(d['Acct-Session-Id']!))) {
        const keys = [
          'Acct-Session-Id',
          'Event-Timestamp',
          'Acct-Delay-Time',
          'Acct-Session-Time',
          'Acct-Terminate-Cause',
        ];
        console.log(`\n# duplicate Stop: ${[...keys, 'Timestamp'].map((k) => `${k}=${r[k]}`).join(' ')}`);
      }
    }
    assert.is(delivered, produced);
    assert.is(duplicated, 0);
    const starts = acctLines(c, 'Start').map((l) => l.split(' ')[2]!);
    assert.is(starts.length, 15);
    assert.is(new Set(starts).size, 15);
    assert.ok([...perSession.keys()].every((id) => ids.includes(id)));
    // Causes: 7 Admin-Reset (terminate), 5 Session-Timeout (time-limit).
    assert.is(stops.filter((l) => l.endsWith('Admin-Reset')).length, 7);
    assert.is(stops.filter((l) => l.endsWith('Session-Timeout')).length, 5);

    // A clean restart keeps the 3 live sessions: no Stop for them.
    await lab.stopDaemon('SIGTERM');
    await lab.startDaemon();
    await new Promise((r) => setTimeout(r, 1500));
    assert.is(acctLines(c, 'Stop').length, produced);
  },
);

t.run();
