/**
 * A real submission server: Debian's exim4 run as root with a configuration of this test's own (`-C`, its spool, log
 * and mailbox in a temporary directory, the host's exim untouched), as a daemon in the foreground. It offers STARTTLS
 * with a certificate for `localhost` signed by a CA made here (the CA is the caller's to trust or not), AUTH only once
 * TLS stands (PLAIN and LOGIN on one port, LOGIN alone on the other), refuses MAIL FROM before AUTH, and appends what
 * it accepts to one mbox file, read back.
 *
 * Exim keeps root for a `-C` file only for root itself: the daemon (started by root) binds and receives, but the
 * delivery it starts runs without privilege ("exim user lost privilege for using -C option" in its log), so the
 * mailbox's directory belongs to the exim user and the transport runs as that user.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, listening } from '../helpers/net.ts';
import { removeTempDir } from '../helpers/temp.ts';

export const EXIM_USER = 'fleet';
export const EXIM_PASSWORD = 'alert-mail-pass-7';
const EXIM_RUN_AS = 'Debian-exim';

export class EximSubmission {
  output = '';
  private constructor(
    /** STARTTLS, then AUTH PLAIN or LOGIN. */
    readonly port: number,
    /** STARTTLS, then AUTH LOGIN only. */
    readonly loginPort: number,
    /** The CA that signed the server's certificate (PEM file). */
    readonly caFile: string,
    private readonly dir: string,
    private readonly child: ChildProcess,
  ) {}

  static async create(): Promise<EximSubmission> {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-exim-'));
    chmodSync(dir, 0o755);
    for (const sub of ['spool', 'mail']) {
      mkdirSync(join(dir, sub));
      execFileSync('chown', [`${EXIM_RUN_AS}:${EXIM_RUN_AS}`, join(dir, sub)]);
    }
    const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    ssl(
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
      '-days',
      '2',
      '-subj',
      '/CN=CA',
    );
    ssl(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'server.key',
      '-out',
      'server.csr',
      '-subj',
      '/CN=localhost',
    );
    writeFileSync(join(dir, 'san.cnf'), 'subjectAltName=DNS:localhost\n');
    const sign = ['-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2'];
    ssl('x509', ...sign, '-extfile', 'san.cnf', '-out', 'server.pem');
    // A key of this test's: readable by the exim user, whichever of exim's processes loads it.
    chmodSync(join(dir, 'server.key'), 0o644);
    const [port, loginPort] = [await freePort(), await freePort()];
    writeFileSync(join(dir, 'exim.conf'), config(dir, port, loginPort));
    const child = spawn('/usr/sbin/exim4', ['-C', join(dir, 'exim.conf'), '-bdf'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const e = new EximSubmission(port, loginPort, join(dir, 'ca.pem'), dir, child);
    const keep = (c: Buffer) => void (e.output = (e.output + c.toString('utf8')).slice(-4000));
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    const deadline = Date.now() + 30_000;
    while (!((await listening(port)) && (await listening(loginPort)))) {
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill('SIGKILL');
        removeTempDir(dir);
        throw new Error(`exim4 -C … -bdf did not listen on ${port} and ${loginPort}: ${e.output}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    return e;
  }

  /** The messages delivered so far, each as its text (mbox's "From " line taken off), oldest first. */
  messages(): string[] {
    const path = join(this.dir, 'mail', 'inbox');
    if (!existsSync(path)) return [];
    return readFileSync(path, 'utf8')
      .split(/^From \S+ .*$/m)
      .slice(1)
      .map((m) => m.replace(/^\n/, ''));
  }

  /** exim's main log: one line per message received (`<=`, with `X=` its TLS and `A=` its authenticator) and more. */
  mainLog(): string {
    const path = join(this.dir, 'spool', 'mainlog');
    return existsSync(path) ? readFileSync(path, 'utf8') : '';
  }

  /** Messages still in this exim's queue (a delivery not done yet). */
  queued(): number {
    const out = execFileSync('/usr/sbin/exim4', ['-C', join(this.dir, 'exim.conf'), '-bpc'], { encoding: 'utf8' });
    return Number(out.trim());
  }

  async close(): Promise<void> {
    if (this.child.exitCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      this.child.kill('SIGTERM');
      await exited;
    }
    removeTempDir(this.dir);
  }
}

function config(dir: string, port: number, loginPort: number): string {
  return `
primary_hostname = submission.example.test
local_interfaces = <; 127.0.0.1.${port} ; 127.0.0.1.${loginPort}
spool_directory = ${dir}/spool
log_file_path = ${dir}/spool/%slog
keep_environment =
exim_user = ${EXIM_RUN_AS}
exim_group = ${EXIM_RUN_AS}
never_users = root
domainlist local_domains = localhost
acl_smtp_mail = acl_mail
acl_smtp_rcpt = acl_rcpt
tls_advertise_hosts = *
tls_certificate = ${dir}/server.pem
tls_privatekey = ${dir}/server.key
received_header_text = Received: from $sender_rcvhost by $primary_hostname with $received_protocol \\
  tls $tls_in_ver auth $authenticated_id id $message_exim_id

begin acl
acl_mail:
  deny message = authentication required
       !authenticated = *
  accept
acl_rcpt:
  accept domains = +local_domains
  deny

begin routers
local:
  driver = accept
  domains = +local_domains
  transport = inbox

begin transports
inbox:
  driver = appendfile
  file = ${dir}/mail/inbox
  user = ${EXIM_RUN_AS}
  group = ${EXIM_RUN_AS}
  mode = 0644

begin authenticators
plain:
  driver = plaintext
  public_name = PLAIN
  server_prompts = :
  server_condition = \${if and{{eq{$auth2}{${EXIM_USER}}}{eq{$auth3}{${EXIM_PASSWORD}}}}}
  server_set_id = $auth2
  server_advertise_condition = \${if and{{def:tls_in_cipher}{eq{$received_port}{${port}}}}}
login:
  driver = plaintext
  public_name = LOGIN
  server_prompts = Username:: : Password::
  server_condition = \${if and{{eq{$auth1}{${EXIM_USER}}}{eq{$auth2}{${EXIM_PASSWORD}}}}}
  server_set_id = $auth1
  server_advertise_condition = \${if def:tls_in_cipher}
`;
}
