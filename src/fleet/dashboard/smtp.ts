/**
 * An SMTP client for the fleet's alert mails (docs/fleet.md, "Alerts"), on Node's net and tls: EHLO, STARTTLS,
 * AUTH PLAIN or LOGIN, MAIL FROM, RCPT TO, DATA, QUIT. One mail a connection (an alert is rare). Every wait for a
 * reply has a deadline; any failure is an SmtpError (ERR_FLEET_ALERT_MAIL) naming the stage, and the caller retries.
 */
import { hostname } from 'node:os';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import {
  authLogin,
  authPlain,
  dataBody,
  extensions,
  path,
  ReplyReader,
  SmtpError,
  type Reply,
  type SmtpStage,
} from './smtp-wire.ts';

/**
 * How the connection is protected: `starttls` (the plain connection upgraded; a server that does not offer it is
 * refused, never sent to in the clear), `tls` (TLS from the first byte, "submissions", port 465), `none` (plain: a
 * relay on this host or its own network).
 */
export type SmtpTls = 'starttls' | 'tls' | 'none';
export const SMTP_TLS_MODES: readonly SmtpTls[] = ['starttls', 'tls', 'none'];
export const DEFAULT_SMTP_PORT: Record<SmtpTls, number> = { starttls: 587, tls: 465, none: 25 };

export interface SmtpServer {
  host: string;
  port: number;
  tls: SmtpTls;
  /** Both or neither: AUTH with them (PLAIN if offered, else LOGIN). */
  user: string | null;
  password: string | null;
}

export interface SmtpMail {
  from: string;
  to: readonly string[];
  /** The whole message, headers and body; any line ends (sent as CRLF, dot-stuffed). */
  message: string;
}

/** How long one reply may take (the greeting includes the connection). */
export const SMTP_REPLY_TIMEOUT_MS = 30_000;

/** Sends one mail; resolves once the server accepted its data (250 after the final "."). */
export async function sendSmtp(
  server: SmtpServer,
  mail: SmtpMail,
  o: { timeoutMs?: number; helo?: string } = {},
): Promise<void> {
  const name = `${server.host}:${server.port}`;
  const timeoutMs = o.timeoutMs ?? SMTP_REPLY_TIMEOUT_MS;
  const socket: Socket =
    server.tls === 'tls'
      ? tlsConnect({ host: server.host, port: server.port, servername: sni(server.host) })
      : netConnect({ host: server.host, port: server.port });
  const c = new Conversation(name, socket, timeoutMs);
  try {
    await c.expect('greeting', 220);
    let ehlo = await c.command('ehlo', `EHLO ${o.helo ?? heloName()}`, 250);
    let ext = extensions(ehlo);
    if (server.tls === 'starttls') {
      if (!ext.starttls) throw new SmtpError(name, 'starttls', 'the server does not offer STARTTLS');
      await c.command('starttls', 'STARTTLS', 220);
      await c.upgrade(server.host);
      ehlo = await c.command('ehlo', `EHLO ${o.helo ?? heloName()}`, 250);
      ext = extensions(ehlo);
    }
    if (server.user !== null && server.password !== null) {
      if (ext.auth.includes('PLAIN'))
        await c.command('auth', `AUTH PLAIN ${authPlain(server.user, server.password)}`, 235, 'AUTH PLAIN');
      else if (ext.auth.includes('LOGIN')) {
        await c.command('auth', 'AUTH LOGIN', 334);
        await c.command('auth', authLogin(server.user), 334, 'the user');
        await c.command('auth', authLogin(server.password), 235, 'the password');
      } else
        throw new SmtpError(name, 'auth', `the server offers no AUTH PLAIN or LOGIN (${ext.auth.join(' ') || 'none'})`);
    }
    const body = ext.eightBitMime ? ' BODY=8BITMIME' : '';
    await c.command('mail', `MAIL FROM:${c.address('mail', mail.from)}${body}`, 250);
    for (const to of mail.to) await c.command('rcpt', `RCPT TO:${c.address('rcpt', to)}`, [250, 251]);
    await c.command('data', 'DATA', 354);
    await c.send('data', dataBody(mail.message), 250);
    // Accepted: a QUIT that fails changes nothing.
    await c.command('quit', 'QUIT', 221).catch(() => undefined);
  } finally {
    c.close();
  }
}

/** A host name for TLS's SNI (not an IP address: RFC 6066 3). */
const sni = (host: string): string | undefined => (/^[\d.]+$|:/.test(host) ? undefined : host);

/** EHLO's argument: this host's name, or an address literal when it is no domain. */
function heloName(): string {
  const h = hostname();
  return /^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$/.test(h) ? h : '[127.0.0.1]';
}

/** One connection's exchange: a command, its reply, checked; a failure of the socket fails the waiting reply. */
class Conversation {
  private reader = new ReplyReader();
  private waiting: { resolve: (r: Reply) => void; reject: (e: unknown) => void } | null = null;
  private failed: unknown = null;
  private stage: SmtpStage = 'connect';
  /** Until the TCP connection stands, a failure is the connection's, whatever reply is awaited. */
  private connected = false;
  private readonly onData = (chunk: Buffer): void => {
    try {
      this.reader.push(chunk);
    } catch (err) {
      return this.fail(new SmtpError(this.name, this.stage, (err as Error).message));
    }
    this.deliver();
  };
  private readonly onError = (err: Error): void =>
    this.fail(new SmtpError(this.name, this.connected ? this.stage : 'connect', err.message, { cause: err }));
  private readonly onClose = (): void =>
    this.fail(new SmtpError(this.name, this.stage, 'the server closed the connection'));

  constructor(
    private readonly name: string,
    private socket: Socket,
    private readonly timeoutMs: number,
  ) {
    this.listen(socket);
    socket.once('connect', () => void (this.connected = true));
  }

  /** Waits for the reply and checks its code. */
  async expect(stage: SmtpStage, want: number | number[], what?: string): Promise<Reply> {
    this.stage = stage;
    const reply = await this.next();
    const ok = Array.isArray(want) ? want.includes(reply.code) : reply.code === want;
    if (!ok)
      throw new SmtpError(
        this.name,
        stage,
        `${what ?? stage.toUpperCase()} answered ${reply.code} ${reply.lines.join(' / ').slice(0, 300)}`,
        { reply: reply.code },
      );
    return reply;
  }

  async command(stage: SmtpStage, line: string, want: number | number[], what?: string): Promise<Reply> {
    return this.send(stage, Buffer.from(`${line}\r\n`, 'utf8'), want, what ?? line.split(' ')[0]);
  }

  async send(stage: SmtpStage, bytes: Buffer, want: number | number[], what?: string): Promise<Reply> {
    this.stage = stage;
    if (this.failed === null) this.socket.write(bytes);
    return this.expect(stage, want, what);
  }

  address(stage: SmtpStage, address: string): string {
    try {
      return path(address);
    } catch (err) {
      throw new SmtpError(this.name, stage, (err as Error).message);
    }
  }

  /** STARTTLS accepted: the same connection, now TLS, the certificate checked against `host`. */
  async upgrade(host: string): Promise<void> {
    this.unlisten(this.socket);
    const plain = this.socket;
    const secure: TLSSocket = tlsConnect({ socket: plain, servername: sni(host), host });
    this.socket = secure;
    this.reader = new ReplyReader();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new SmtpError(this.name, 'starttls', 'no TLS handshake in time')),
        this.timeoutMs,
      );
      secure.once('secureConnect', () => {
        clearTimeout(timer);
        resolve();
      });
      secure.once('error', (err) => {
        clearTimeout(timer);
        reject(new SmtpError(this.name, 'starttls', `TLS: ${err.message}`, { cause: err }));
      });
    });
    this.listen(secure);
  }

  close(): void {
    this.unlisten(this.socket);
    this.socket.on('error', () => undefined);
    this.socket.destroy();
  }

  private listen(s: Socket): void {
    s.on('data', this.onData);
    s.on('error', this.onError);
    s.on('close', this.onClose);
  }

  private unlisten(s: Socket): void {
    s.off('data', this.onData);
    s.off('error', this.onError);
    s.off('close', this.onClose);
  }

  private next(): Promise<Reply> {
    const ready = this.reader.take();
    if (ready !== undefined) return Promise.resolve(ready);
    if (this.failed !== null) return Promise.reject(this.failed);
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(
        () => this.fail(new SmtpError(this.name, this.stage, `no answer within ${this.timeoutMs / 1000} s`)),
        this.timeoutMs,
      );
      this.waiting = {
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
    });
  }

  private deliver(): void {
    const w = this.waiting;
    if (w === null) return;
    const r = this.reader.take();
    if (r === undefined) return;
    this.waiting = null;
    w.resolve(r);
  }

  private fail(err: unknown): void {
    this.failed ??= err;
    this.socket.destroy();
    const w = this.waiting;
    this.waiting = null;
    w?.reject(this.failed);
  }
}
