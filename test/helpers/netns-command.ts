import { writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';

/**
 * A command the code under test runs as configured (`option nft`, `conntrack`), made to run in the network namespace
 * `ns`: a wrapper script `dir/<command's name>` that execs it there. Its path.
 */
export function netnsCommand(dir: string, ns: string, command: string): string {
  const path = join(dir, basename(command));
  writeFileSync(path, `#!/bin/sh\nexec ip netns exec ${ns} ${command} "$@"\n`, { mode: 0o755 });
  return path;
}
