/**
 * SMTP's wire format, pure (RFC 5321; AUTH: RFC 4954, PLAIN RFC 4616, LOGIN as every server speaks it; STARTTLS
 * RFC 3207): replies read line by line within limits, the EHLO keywords, a message made into DATA's body (CRLF lines,
 * dot-stuffed, ended by "."), and the AUTH exchanges. The socket is smtp.ts's.
 */
import { SluiceError } from '../../errors.ts';

/** RFC 5321 4.5.3.1.5: a reply line is at most 512 octets; a server's EHLO list is well under 64 of them. */
export const MAX_REPLY_LINE = 512;
const MAX_REPLY_LINES = 64;

export type SmtpStage = 'connect' | 'greeting' | 'ehlo' | 'starttls' | 'auth' | 'mail' | 'rcpt' | 'data' | 'quit';

/** A mail the SMTP server could not be reached for, or refused, or answered wrongly: the sending is tried again. */
export class SmtpError extends SluiceError {
  constructor(
    readonly server: string,
    readonly stage: SmtpStage,
    why: string,
    options: { reply?: number; cause?: unknown } = {},
  ) {
    super('ERR_FLEET_ALERT_MAIL', `SMTP ${server} ${stage}: ${why}`, {
      cause: options.cause,
      details: { server, stage, ...(options.reply !== undefined && { reply: options.reply }) },
    });
  }
}

export interface Reply {
  code: number;
  /** The text of each line, without its code and separator. */
  lines: string[];
}

/**
 * Reads replies from the bytes as they come: `push` a chunk, take the complete replies. A line over
 * MAX_REPLY_LINE, a reply of more lines than MAX_REPLY_LINES, a line without a three-digit code, or a multi-line reply
 * whose lines' codes differ is an error, thrown before more is kept.
 */
export class ReplyReader {
  private partial = '';
  private lines: string[] = [];
  private code = 0;
  private readonly done: Reply[] = [];

  push(chunk: Buffer): void {
    this.partial += chunk.toString('latin1');
    for (let nl = this.partial.indexOf('\n'); nl >= 0; nl = this.partial.indexOf('\n')) {
      const line = this.partial.slice(0, nl).replace(/\r$/, '');
      this.partial = this.partial.slice(nl + 1);
      this.line(line);
    }
    if (this.partial.length > MAX_REPLY_LINE) throw new Error(`a reply line longer than ${MAX_REPLY_LINE} octets`);
  }

  /** The complete replies read so far, oldest first, taken out. */
  take(): Reply | undefined {
    return this.done.shift();
  }

  private line(line: string): void {
    if (line.length > MAX_REPLY_LINE) throw new Error(`a reply line longer than ${MAX_REPLY_LINE} octets`);
    const m = /^([2-5]\d\d)([ -]|$)(.*)$/.exec(line);
    if (m === null) throw new Error(`not an SMTP reply: ${JSON.stringify(line.slice(0, 80))}`);
    const code = Number(m[1]);
    if (this.lines.length > 0 && code !== this.code) throw new Error(`a reply's lines disagree: ${this.code}, ${code}`);
    if (this.lines.length >= MAX_REPLY_LINES) throw new Error(`a reply of more than ${MAX_REPLY_LINES} lines`);
    this.code = code;
    this.lines.push(m[3]!);
    if (m[2] === '-') return;
    this.done.push({ code, lines: this.lines });
    this.lines = [];
  }
}

/** What a server said it can do in its EHLO reply (the lines after the greeting line), by keyword. */
export interface Extensions {
  starttls: boolean;
  /** AUTH mechanisms offered, upper case. */
  auth: string[];
  eightBitMime: boolean;
}

export function extensions(ehlo: Reply): Extensions {
  const words = ehlo.lines.slice(1).map((l) =>
    l
      .trim()
      .toUpperCase()
      .split(/[\s=]+/),
  );
  const has = (k: string) => words.some((w) => w[0] === k);
  return {
    starttls: has('STARTTLS'),
    auth: words.filter((w) => w[0] === 'AUTH').flatMap((w) => w.slice(1)),
    eightBitMime: has('8BITMIME'),
  };
}

/**
 * A message (any of CRLF, LF or CR line ends) as DATA's body: every line ended by CRLF, a line that begins with "."
 * given one more (RFC 5321 4.5.2: the server takes it off), then the "." line that ends the data.
 */
export function dataBody(message: string): Buffer {
  const lines = message
    .replace(/\r\n|\r|\n/g, '\n')
    .replace(/\n$/, '')
    .split('\n');
  return Buffer.from(lines.map((l) => (l.startsWith('.') ? `.${l}` : l)).join('\r\n') + '\r\n.\r\n', 'utf8');
}

/** AUTH PLAIN's one answer (RFC 4616): no authorization identity, then the user and password. */
export function authPlain(user: string, password: string): string {
  return Buffer.from(`\0${user}\0${password}`, 'utf8').toString('base64');
}

/** AUTH LOGIN's answers, in base64: the user, then the password. */
export const authLogin = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

/** A mail address as MAIL FROM and RCPT TO carry it; one with a line break or an angle bracket is refused. */
export function path(address: string): string {
  if (!/^[^\s<>]+@[^\s<>]+$/.test(address)) throw new Error(`${JSON.stringify(address)} is not a mail address`);
  return `<${address}>`;
}
