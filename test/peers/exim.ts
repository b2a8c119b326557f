/**
 * A real SMTP server: Debian's exim4 (its own configuration, which delivers mail for localhost to /var/mail/<user>
 * and offers STARTTLS with a certificate of its own making), as a daemon in the foreground on a free port of
 * 127.0.0.1, beside the host's (which need not run). Delivered mail is read back from the user's mailbox.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { freePort, listening } from '../helpers/net.ts';

export class Exim {
  output = '';
  private constructor(
    readonly port: number,
    private readonly child: ChildProcess,
  ) {}

  static async create(): Promise<Exim> {
    const port = await freePort();
    // -bdf: the daemon in the foreground (ours to stop); -oX: its interface and port; no -oP: no pid file written.
    const child = spawn('/usr/sbin/exim4', ['-bdf', '-oX', `127.0.0.1.${port}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    const e = new Exim(port, child);
    const keep = (c: Buffer) => void (e.output = (e.output + c.toString('utf8')).slice(-4000));
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    const deadline = Date.now() + 30_000;
    while (!(await listening(port))) {
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`exim4 -bdf did not listen on ${port}: ${e.output}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    return e;
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    await exited;
  }
}

/** The messages in an mbox mailbox (e.g. /var/mail/mail), each as its text, oldest first. */
export function mailboxMessages(path: string): string[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split(/^From \S+ .*$/m)
    .slice(1)
    .map((m) => m.replace(/^\n/, ''));
}
