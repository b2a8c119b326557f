// CLI entry: `sluice <command>` picks the command; each parses its own arguments (the daemon's: cli.ts).
import { runDaemon } from './cli.ts';
import { runUbusCli, runUbusd } from './ubus/index.ts';

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
    case 'daemon':
      return runDaemon(rest);
    case 'demo': {
      const { runDemo } = await import('./demo/index.ts');
      return runDemo(rest);
    }
    case 'demo-ndsctl': {
      const { runDemoNdsctl } = await import('./demo/ndsctl-client.ts');
      return runDemoNdsctl(rest);
    }
    case 'ubusd':
      return runUbusd(rest);
    case 'ubus':
      return runUbusCli(rest);
    default:
      process.stderr.write(USAGE);
      return command === undefined || command === '-h' || command === '--help' ? 0 : 2;
  }
}

process.exitCode = await main(process.argv.slice(2));
