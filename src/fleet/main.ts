// The `sluice-fleet` command's entry (dist/fleet/fleet.mjs): what it does is cli.ts's.
import { runFleet } from './cli.ts';

process.exitCode = await runFleet(process.argv.slice(2));
