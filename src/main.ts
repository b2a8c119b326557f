// CLI entry: `sluice <command>`; argument parsing and wiring only. Commands are added by their subsystems.
const USAGE = `usage: sluice <command> [options]

commands:
  daemon   run the sluice daemon
  demo     run the embedded demo
  ubusd    run the embedded ubus broker
  ubus     talk to a ubus bus like the ubus CLI
`;

async function main(argv: string[]): Promise<number> {
  const [command] = argv;
  switch (command) {
    default:
      process.stderr.write(USAGE);
      return command === undefined || command === '-h' || command === '--help' ? 0 : 2;
  }
}

process.exitCode = await main(process.argv.slice(2));
