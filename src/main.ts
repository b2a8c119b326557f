// CLI entry: `sluice <command>` picks the command; each parses its own arguments (the daemon's: cli.ts).
// Nothing is imported statically: the daemon's modules take ~100 ms to load on a router, and until a SIGHUP handler
// exists Node's default for SIGHUP is to exit (129) — procd's reload right after a start killed the daemon. The
// handler below is installed first; the commands load after it.

/** SIGHUPs that arrived before the daemon's own handler: the daemon reloads once it is up. */
interface HeldHangups {
  readonly count: number;
  /** Stops holding (the daemon's handler has taken over). */
  release(): void;
}

function holdHangups(): HeldHangups {
  let count = 0;
  const hold = (): void => { count++; };
  process.on('SIGHUP', hold);
  return { get count() { return count; }, release: () => { process.off('SIGHUP', hold); } };
}

const USAGE = `usage: sluice <command> [options]

commands:
  daemon [--config FILE] [--ubus-socket SOCK] [--reset-state]
                                                run the sluice daemon (--reset-state: once, to start
                                                after ERR_STATE_LOST with what could be read)
  demo [--clients N] [--seconds S]              the embedded demo: broker, simulated portal, daemon, live view
  ubusd [-s SOCK]                               run the embedded ubus broker (a ubus bus anywhere)
  ubus [-s SOCK] [-t TIMEOUT] list|call|listen|send ...
                                                talk to a ubus bus like the ubus CLI
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'daemon': {
      const held = holdHangups();
      const { runDaemon } = await import('./cli.ts');
      return runDaemon(rest, held);
    }
    case 'demo': {
      const { runDemo } = await import('./demo/index.ts');
      return runDemo(rest);
    }
    case 'demo-ndsctl': {
      const { runDemoNdsctl } = await import('./demo/ndsctl-client.ts');
      return runDemoNdsctl(rest);
    }
    case 'ubusd':
      return (await import('./ubus/index.ts')).runUbusd(rest);
    case 'ubus':
      return (await import('./ubus/index.ts')).runUbusCli(rest);
    default:
      process.stderr.write(USAGE);
      return command === undefined || command === '-h' || command === '--help' ? 0 : 2;
  }
}

process.exitCode = await main(process.argv.slice(2));
