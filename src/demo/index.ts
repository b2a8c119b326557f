/**
 * `sluice demo [--clients N] [--seconds S]`: the real daemon against the embedded ubus broker and a simulated openNDS
 * (realistic traffic, resets, departures, arrivals) reached through an ndsctl-compatible interface; purchases made over
 * ubus as a portal would; a live view from the `sluice.session` events. Ends after S seconds or on Ctrl-C.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Daemon } from '../daemon.ts';
import { quoteUci } from '../config/index.ts';
import { createLogger } from '../log.ts';
import { listenNdsctlSocket, PortalModel, portalRequestHandler, TrafficSimulator } from '../sim/index.ts';
import { UbusClient, UbusStatusError, type BlobmsgTable } from '../ubus/index.ts';
import { UbusBroker } from '../ubus/broker/index.ts';
import { demoPaymentMethod } from './payment.ts';
import { prng } from '../prng.ts';
import { applyEvent, renderView, type ViewSession, type ViewTotals } from './view.ts';
import { POLL_S, summary, type Deauth, type Figures } from './summary.ts';
import { actionIntervalMs, nextAction } from './activity.ts';
import { DELIBERATE_BAD_MAC, explainLogLine, refusalText } from './explain.ts';

interface DemoOptions {
  clients: number;
  seconds: number;
}

const DEMO_USAGE = `usage: sluice demo [--clients N] [--seconds S]
  --clients N   clients on the simulated openNDS (1..100000, default 200)
  --seconds S   how long the demo runs (1..86400, default 60); Ctrl-C ends it sooner
  --fleet       the fleet demo instead (sluice-fleet demo: three routers, a broker, a database, the dashboard)
`;

/** The demo's options, `help`, or what is wrong with its arguments. */
function parseDemoArgs(argv: readonly string[]): DemoOptions | 'help' | string {
  const o: DemoOptions = { clients: 200, seconds: 60 };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = Number(argv[i + 1]);
    if (flag === '-h' || flag === '--help') return 'help';
    if (flag === '--clients' && Number.isInteger(value) && value >= 1 && value <= 100_000) {
      o.clients = value;
      i++;
    } else if (flag === '--seconds' && Number.isFinite(value) && value >= 1 && value <= 86_400) {
      o.seconds = value;
      i++;
    } else return `unexpected argument ${JSON.stringify(flag)}`;
  }
  return o;
}

/**
 * `--fleet`: the fleet's own program (dist/fleet/fleet.mjs, never part of the router's bundle: only its path is here)
 * runs its demo in a child process that shares this terminal.
 */
function runFleetDemo(argv: readonly string[]): Promise<number> {
  const bundle = fileURLToPath(new URL('./fleet/fleet.mjs', import.meta.url));
  if (!existsSync(bundle)) {
    process.stderr.write(
      `sluice demo --fleet: ${bundle} is missing: run npm run build (npm run demo -- --fleet does)\n`,
    );
    return Promise.resolve(1);
  }
  const child = spawn(process.execPath, [bundle, 'demo', ...argv], { stdio: 'inherit' });
  // Ctrl-C reaches the child from the terminal too (same process group); a SIGINT or SIGTERM sent to this process
  // alone (kill <pid>) is passed on. Either way the child stops its routers and database, then exits, and so do we.
  const forward = (signal: NodeJS.Signals): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  return new Promise((resolve) =>
    child.once('exit', (code) => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      resolve(code ?? 1);
    }),
  );
}

export async function runDemo(argv: string[]): Promise<number> {
  if (argv.includes('--fleet')) return runFleetDemo(argv.filter((a) => a !== '--fleet'));
  const parsed = parseDemoArgs(argv);
  if (parsed === 'help') {
    process.stdout.write(DEMO_USAGE);
    return 0;
  }
  if (typeof parsed === 'string') {
    process.stderr.write(`sluice demo: ${parsed}\n${DEMO_USAGE}`);
    return 2;
  }
  const { clients, seconds } = parsed;
  const tty = process.stdout.isTTY === true;
  const dir = mkdtempSync(join(tmpdir(), 'sluice-demo-'));
  const ubusSocket = join(dir, 'ubus.sock');
  const portalSocket = join(dir, 'ndsctl.sock');
  const configPath = join(dir, 'sluice.uci');
  // The valve speaks the simulated portal's control socket (main.ndsctl_socket), as with a real portal; ndsctl (this
  // very program in its ndsctl role) stays configured as the fallback.
  const self = [process.execPath, ...process.execArgv, process.argv[1] ?? 'sluice'];
  const ndsctl = [...self, 'demo-ndsctl', '--socket', portalSocket]
    .map((a) => `\tlist ndsctl ${quoteUci(a)}`)
    .join('\n');
  writeFileSync(
    configPath,
    `config sluice 'main'
\toption state_dir ${quoteUci(join(dir, 'state'))}
${ndsctl}
\toption ndsctl_socket ${quoteUci(portalSocket)}
\toption portal 'opennds'
\toption poll_interval '${POLL_S}'
\toption checkpoint_interval '10'
\toption log_level 'info'

config pricing 'data'
\toption metric 'bytes'
\toption step_size '256KiB'
\toption price_per_step '10000'
\toption min_steps '1'
\toption max_steps '50'

config pricing 'time'
\toption metric 'seconds'
\toption step_size '10'
\toption price_per_step '1000'
\toption min_steps '1'
\toption max_steps '60'

config limits 'limits'
\toption max_devices_per_user '2'
`,
  );

  const totals: ViewTotals = {
    clients,
    purchases: 0,
    topups: 0,
    terminates: 0,
    rejected: 0,
    ended: {},
    tickMs: 0,
    ticks: 0,
    meteredBytes: 0,
    rssMb: 0,
    events: [],
  };
  const sessions = new Map<string, ViewSession>();
  const figures: Figures = { tickGaps: [], tickMs: [], gateMs: [], gateLate: 0, lastTickStart: undefined };
  const event = (text: string): void => {
    const line = `${new Date().toISOString().slice(11, 19)} ${text}`;
    totals.events.push(line);
    if (totals.events.length > 200) totals.events.splice(0, 100);
    if (!tty) process.stdout.write(line + '\n');
  };

  const random = prng(7);
  const model = new PortalModel({ flavour: 'opennds', gatewayName: 'sluice-demo' });
  const traffic = new TrafficSimulator(model, {
    clients,
    seed: 11,
    authenticatedShare: 0.03,
    medianRateBps: 60_000,
    burstChance: 0.002,
    departureChance: 0.002,
    resetChance: 0.002,
  });
  traffic.populate();
  // What passed through each gate up to its deauth (the portal's own counters, bytes both ways), so the summary reports
  // the real overshoot of a cut session, not only what was billed: bytes that pass between the last reading and the
  // deauth are never billed (openNDS drops the client's counters at deauth).
  const deauths: Deauth[] = [];
  /** Per authenticated client, its counters (bytes both ways) after each traffic step of the last ~1.5 s. */
  const recent = new Map<string, Array<[number, number]>>();
  const answer = portalRequestHandler(model);
  const portal = await listenNdsctlSocket(portalSocket, (line) => {
    if (line.startsWith('deauth ')) {
      const c = model.get(line.slice('deauth '.length));
      if (c !== undefined && c.state === 'Authenticated') {
        const now = performance.now();
        const bytes = c.downloadBytes + c.uploadBytes;
        // Its rate in the last second before the cut: the simulator's bursts land up to 20 s of a client's average
        // traffic in one step, which no reading can cut inside; "its rate" is the rate those bytes came at.
        const before = (recent.get(c.mac) ?? []).find(([at]) => now - at <= 1000);
        const lastSecondBps =
          before !== undefined && now > before[0] ? ((bytes - before[1]) * 1000) / (now - before[0]) : 0;
        deauths.push({ mac: c.mac, atMs: now, bytes, lastSecondBps });
      }
    }
    return answer(line);
  });
  const broker = await UbusBroker.listen({ socketPath: ubusSocket });
  // The daemon's log lines worth a newcomer's attention, each with why (explain.ts): the start-up reconcile's one
  // summary line stands for its per-client deauths, a session's end line for its gate's close.
  const log = createLogger({
    level: 'info',
    write: (_level, line) => {
      const text = explainLogLine(line);
      if (text !== undefined) event(text);
    },
  });
  let daemon: Daemon | undefined;
  let client: UbusClient | undefined;
  const timers: NodeJS.Timeout[] = [];
  let stopRequested: (() => void) | undefined;
  const stopped = new Promise<void>((r) => {
    stopRequested = r;
  });
  const onSigint = (): void => stopRequested?.();
  process.on('SIGINT', onSigint);
  const started = Date.now();
  let code = 0;
  try {
    daemon = await Daemon.start({
      configPath,
      ubusSocket,
      log,
      paymentMethods: [demoPaymentMethod],
      meterSource: { kind: 'socket', path: portalSocket },
    });
    daemon.meter.on('tick', (r) => {
      const start = performance.now() - r.durationMs;
      if (figures.lastTickStart !== undefined) figures.tickGaps.push(start - figures.lastTickStart);
      figures.lastTickStart = start;
      figures.tickMs.push(r.durationMs);
    });
    client = await UbusClient.connect({ socketPath: ubusSocket, timeoutMs: 15_000 });
    const bus = client;
    await bus.listen('sluice.session', (_type, data) => applyEvent(data, sessions, totals, event));
    event(`daemon up: ${clients} clients on the simulated portal, ${Math.round(seconds)} s`);

    // Traffic flows in real time.
    let last = Date.now();
    timers.push(
      setInterval(
        () => {
          const now = Date.now();
          traffic.step(now - last);
          last = now;
          // Remember the counters of the paying clients (only theirs: the others are never cut) for the summary's rate.
          const at = performance.now();
          for (const s of sessions.values()) {
            if (s.state !== 'ACTIVE' || s.metric !== 'bytes') continue;
            const c = model.get(s.mac);
            if (c === undefined || c.state !== 'Authenticated') continue;
            const list = recent.get(s.mac) ?? [];
            list.push([at, c.downloadBytes + c.uploadBytes]);
            while (list.length > 0 && at - list[0]![0] > 1500) list.shift();
            recent.set(s.mac, list);
          }
        },
        clients > 500 ? 250 : 100,
      ),
    ); // finer steps, finer cuts; the sim shares the daemon's thread

    // A portal's purchases, data and time, some top-ups, one admin terminate: to the end of the run (activity.ts).
    let reference = 0;
    let terminated = false;
    timers.push(
      setInterval(
        () => {
          const action = nextAction(
            {
              elapsedMs: Date.now() - started,
              totalMs: seconds * 1000,
              terminated,
              active: [...sessions.values()].filter((s) => s.state === 'ACTIVE'),
              candidates: model
                .clients()
                .filter((c) => c.state === 'Preauthenticated')
                .map((c) => c.mac),
            },
            random,
          );
          if (action === undefined) return;
          if (action.kind === 'terminate') {
            terminated = true;
            void bus.call('sluice', 'terminate', { mac: action.mac }).then(
              () => {
                totals.terminates++;
                event(`admin terminate ${action.mac}: the demo ends one session as an admin would`);
              },
              () => undefined,
            );
          } else void buy(action.mac, action.args, action.kind === 'topup');
        },
        actionIntervalMs(clients, seconds),
      ),
    );
    // One refused purchase, as a portal with a bug would send: below the plan's minimum.
    timers.push(setTimeout(() => void buy(DELIBERATE_BAD_MAC, { plan: 'data', amount: '10' }, false), 1500));

    async function buy(mac: string, args: BlobmsgTable, topup: boolean): Promise<void> {
      try {
        const asked = performance.now();
        const reply = await bus.call('sluice', 'purchase', {
          mac,
          ...args,
          payment: { method: 'demo', reference: `demo-${process.pid}-${++reference}` },
        });
        if (topup) totals.topups++;
        else {
          totals.purchases++;
          // The reply waits for the gate (bounded): its arrival is when the customer's traffic can pass.
          if (reply?.gate === 'opened' || reply?.gate === 'already-open')
            figures.gateMs.push(performance.now() - asked);
          else figures.gateLate++;
        }
      } catch (err) {
        totals.rejected++;
        const error =
          err instanceof UbusStatusError
            ? (err.replies[0]?.error as { code?: string; message?: string } | undefined)
            : undefined;
        event(refusalText(mac, error?.code ?? (err instanceof Error ? err.message : String(err)), error?.message));
      }
    }

    timers.push(
      setInterval(() => {
        void bus.call('sluice', 'stats').then(
          (stats) => {
            const meter = (stats?.meter ?? {}) as Record<string, number>;
            totals.tickMs = meter.tick_ms_last ?? 0;
            totals.ticks = meter.ticks ?? 0;
            totals.rssMb = (stats?.rss_mb as number | undefined) ?? 0;
          },
          () => undefined,
        );
      }, 1000),
    );

    if (tty) {
      process.stdout.write('\x1b[?1049h\x1b[?25l');
      timers.push(
        setInterval(() => {
          const view = renderView(sessions.values(), totals, {
            // 0 when the terminal reports no size (e.g. under script(1) without a terminal): assume 40 × 100.
            // One column spare: a line that fills the last column leaves the cursor there, and the erase-to-end after
            // it would wipe that last character.
            now: Date.now(),
            rows: process.stdout.rows || 40,
            columns: (process.stdout.columns || 100) - 1,
            elapsedS: (Date.now() - started) / 1000,
            totalS: seconds,
          });
          // In place: home, each line cleared to its end, then the rest of the screen (no flicker of a full clear).
          process.stdout.write(`\x1b[H${view.split('\n').join('\x1b[K\n')}\x1b[K\x1b[J`);
        }, 500),
      );
    } else {
      timers.push(
        setInterval(() => {
          const active = [...sessions.values()].filter((s) => s.state === 'ACTIVE').length;
          process.stdout.write(
            `-- ${Math.floor((Date.now() - started) / 1000)}s: ${active} active, ${totals.purchases} ` +
              `purchases, ${totals.topups} top-ups, tick ${totals.tickMs.toFixed(1)} ms\n`,
          );
        }, 5000),
      );
    }
    timers.push(setTimeout(() => stopRequested?.(), seconds * 1000));
    await stopped;
  } catch (err) {
    code = 1;
    process.stderr.write(`sluice demo: ${err instanceof Error ? err.message : String(err)}\n`);
  } finally {
    for (const t of timers) clearTimeout(t);
    if (tty) process.stdout.write('\x1b[?25h\x1b[?1049l');
    process.off('SIGINT', onSigint);
    await daemon?.stop();
    client?.destroy();
    await portal.close();
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  }
  if (code === 0) process.stdout.write(summary(sessions, totals, figures, deauths, (Date.now() - started) / 1000));
  return code;
}

export { demoPaymentMethod } from './payment.ts';
