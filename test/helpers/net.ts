/** Ports for the peers, daemons and servers a test starts. */
import { createSocket } from 'node:dgram';
import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { join } from 'node:path';
import { atFileEnd } from './file-end.mjs';

/**
 * Where freePort picks: below Linux's ephemeral range (32768–60999 by default), so no outgoing connection's local port
 * and no listen(0) elsewhere on the machine lands on a port a test chose. A test that restarts a peer on the same
 * port (a mint, a broker, a facilitator) needs that: with ports from the ephemeral range, the port was taken by some
 * other process's connection while the peer was down (EADDRINUSE in peers/cashu-mint's rotation test, at load ~35
 * with five files at a time).
 */
const LOW = 20_000;
const HIGH = 32_767;

/**
 * The ports test files hold, machine-wide: a file per port, `<port>` holding the pid of the process whose test picked
 * it. A port stays a file's from its pick to the end of that file (test/helpers/file-end.mjs), bound or not: a daemon
 * killed and restarted on its port (kill -9 tests) leaves it free for a moment, and another file picking it then took
 * it (CI, a clean clone's full run: a daemon without Cashu answered a restarted one's pay page with 501).
 */
// /tmp itself, not os.tmpdir(): the fast files' TMPDIR is a tmpfs folder of their run's (test/run.mjs).
export const HELD_DIR = '/tmp/sluice-test-ports';
/** The ports this file picked, given back as it ends. */
const held = new Set<number>();
let givesBack = false;

/** Whether a process `pid` runs (kill(pid, 0): EPERM is another user's). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes `port` for this process unless a live one holds it (a holder that is gone leaves a stale file: taken over). */
export function holdPort(port: number): boolean {
  const file = join(HELD_DIR, String(port));
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' });
      held.add(port);
      if (!givesBack) {
        givesBack = true;
        atFileEnd(() => {
          for (const p of held) {
            try {
              unlinkSync(join(HELD_DIR, String(p)));
            } catch {
              // Gone already.
            }
          }
          held.clear();
        });
      }
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        mkdirSync(HELD_DIR, { recursive: true });
        continue;
      }
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let holder = NaN;
    try {
      holder = Number(readFileSync(file, 'utf8'));
    } catch {
      // Given back meanwhile: try again.
    }
    // The host of the fast files is one process for many files: its own pid's files are other threads' picks.
    if (Number.isSafeInteger(holder) && holder > 0 && alive(holder)) return false;
    try {
      unlinkSync(file);
    } catch {
      // Taken over by another picker first: the next write sees its file.
    }
  }
  return false;
}

/** True when `port` on 127.0.0.1 can be bound now for TCP and for UDP. */
async function bindable(port: number): Promise<boolean> {
  const tcp = await new Promise<boolean>((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
  if (!tcp) return false;
  return new Promise<boolean>((resolve) => {
    const socket = createSocket('udp4');
    socket.once('error', () => {
      socket.close();
      resolve(false);
    });
    socket.bind(port, '127.0.0.1', () => socket.close(() => resolve(true)));
  });
}

/**
 * A port on 127.0.0.1 that is free for TCP and for UDP at the time of the call (RADIUS and the DAS listen on UDP,
 * HTTP and MQTT on TCP; one helper serves both), picked at random below the ephemeral range, and held for the caller's
 * file (HELD_DIR): no other test file picks it while this one runs, whether or not it is bound at the moment.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW + 1));
    if (held.has(port) || !holdPort(port)) continue;
    if (await bindable(port)) return port;
  }
  throw new Error(`no port free for both TCP and UDP in 50 tries between ${LOW} and ${HIGH}`);
}

/** Whether something accepts TCP connections on 127.0.0.1:`port` now. */
export function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}
