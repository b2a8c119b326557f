/**
 * `sluice demo-ndsctl --socket PATH <command> [args…]`: an ndsctl for the demo's simulated portal. It does what the
 * real ndsctl does (openNDS src/ndsctl.c): join the arguments with commas, send `<command> <args>\r\n\r\n` to the
 * portal's control socket, print the answer; `auth`/`deauth` turn the portal's `Yes`/`No` into ndsctl's messages
 * and exit codes (0 yes, 1 no, 3 cannot connect), so the valve drives it exactly like the real one.
 */
import { createConnection } from 'node:net';

/** One ndsctl call over the portal's control socket, as ndsctl.c makes it: exit code and stdout. */
export async function ndsctlOverSocket(
  path: string,
  command: string,
  args: readonly string[],
): Promise<{ code: number; stdout: string }> {
  const request = `${command}${args.length ? ` ${args.join(',')}` : ''}\r\n\r\n`;
  let answer: string;
  try {
    answer = await new Promise<string>((resolve, reject) => {
      const chunks: Buffer[] = [];
      const socket = createConnection(path, () => socket.write(request));
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      socket.on('error', reject);
    });
  } catch {
    return { code: 3, stdout: '' };
  }
  if (command === 'auth' || command === 'deauth') {
    const target = args[0] ?? '';
    if (answer.startsWith('Yes')) {
      return {
        code: 0,
        stdout: command === 'auth' ? `Client ${target} authenticated.\n` : `Client ${target} deauthenticated.\n`,
      };
    }
    return {
      code: 1,
      stdout: command === 'auth' ? `Failed to authenticate client ${target}.\n` : `Client ${target} not found.\n`,
    };
  }
  if (answer === '') return { code: 2, stdout: '' };
  return { code: 0, stdout: answer };
}

const USAGE = 'usage: sluice demo-ndsctl --socket PATH <json|auth|deauth|status> [args…]\n';

export async function runDemoNdsctl(argv: string[]): Promise<number> {
  if (argv.length === 1 && (argv[0] === '-h' || argv[0] === '--help')) {
    process.stdout.write(USAGE);
    return 0;
  }
  const at = argv.indexOf('--socket');
  const path = at >= 0 ? argv[at + 1] : undefined;
  const rest = at >= 0 ? [...argv.slice(0, at), ...argv.slice(at + 2)] : argv;
  const [command, ...args] = rest;
  if (path === undefined || command === undefined) {
    process.stderr.write(USAGE);
    return 2;
  }
  const { code, stdout } = await ndsctlOverSocket(path, command, args);
  if (code === 3) process.stderr.write('ndsctl: unable to connect to the portal\n');
  process.stdout.write(stdout);
  return code;
}
