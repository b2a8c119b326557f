// CLI entry: `sluice <command>` picks the command; each parses its own arguments (the daemon's: cli.ts).
// Nothing is imported statically: the daemon's modules take ~100 ms to load on a router, and until a SIGHUP handler
// exists Node's default for SIGHUP is to exit (129) — procd's reload right after a start killed the daemon. The
// handler below is installed first; the commands load after it (even version.ts, so that this stays true as it grows).

/** SIGHUPs that arrived before the daemon's own handler: the daemon reloads once it is up. */
interface HeldHangups {
  readonly count: number;
  /** Stops holding (the daemon's handler has taken over). */
  release(): void;
}

function holdHangups(): HeldHangups {
  let count = 0;
  const hold = (): void => {
    count++;
  };
  process.on('SIGHUP', hold);
  return {
    get count() {
      return count;
    },
    release: () => {
      process.off('SIGHUP', hold);
    },
  };
}

const USAGE = `usage: sluice <command> [options]
       sluice <command> --help     that command's own usage
       sluice --version | -V       the version
       sluice help [<command>]     this help, or a command's

commands:
  daemon [--config FILE] [--ubus-socket SOCK] [--reset-state]
                                                run the sluice daemon (--reset-state: once, to start
                                                after ERR_STATE_LOST with what could be read)
  demo [--clients N] [--seconds S]              the embedded demo: broker, simulated portal, daemon, live view
  ubusd [-s SOCK]                               run the embedded ubus broker (a ubus bus anywhere)
  ubus [-s SOCK] [-t TIMEOUT] list|call|listen|send ...
                                                talk to a ubus bus like the ubus CLI
`;

const isHelp = (arg: string | undefined): boolean => arg === '-h' || arg === '--help';

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'daemon': {
      const held = holdHangups();
      // Before the daemon's modules load, so none of their functions is optimized while the router is idle.
      (await import('./optimizer.ts')).holdOptimizer();
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
      return (await import('./ubus/broker/index.ts')).runUbusd(rest);
    case 'ubus': {
      const { runUbusCli } = await import('./ubus/index.ts');
      // The ubus CLI keeps the C program's conventions (usage on stderr, exit 1, for anything it does not take), so
      // scripts written for one work with the other; `--help` as the first argument (which the C CLI never took) is
      // sluice's convention: the same usage, on stdout, exit 0.
      if (isHelp(rest[0]) && rest.length === 1) {
        await runUbusCli([], { stderr: (t) => void process.stdout.write(t) });
        return 0;
      }
      return runUbusCli(rest);
    }
    case 'help':
      // `sluice help <command>` is `sluice <command> --help`.
      if (rest[0] !== undefined && rest[0] !== 'help') return main([rest[0], '--help']);
      process.stdout.write(USAGE);
      return 0;
    case '--version':
    case '-V':
      process.stdout.write(`sluice ${(await import('./version.ts')).VERSION}\n`);
      return 0;
    case undefined:
      process.stderr.write(USAGE);
      return 2;
    default:
      if (isHelp(command)) {
        process.stdout.write(USAGE);
        return 0;
      }
      process.stderr.write(
        `sluice: unknown ${command.startsWith('-') ? 'option' : 'command'} ${JSON.stringify(command)}\n${USAGE}`,
      );
      return 2;
  }
}

process.exitCode = await main(process.argv.slice(2));
