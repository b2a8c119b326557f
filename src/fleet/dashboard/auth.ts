/**
 * Who may see the dashboard: users with a role (admin: sees and acts; operator: sees only), logins as random tokens in
 * an HttpOnly, SameSite=Strict cookie whose SHA-256 is the database's key, and a CSRF token per login that every
 * form that changes something carries. Failed logins are limited per user name (a guessing attacker waits), counted
 * in the database so that several dashboard processes share one count, and counted before the password is checked.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Sql } from '../db/index.ts';
import { hashPassword, passwordProblem, verifyPassword } from './passwords.ts';

export type Role = 'admin' | 'operator';
export const ROLES: readonly Role[] = ['admin', 'operator'];

export interface Login {
  user: string;
  role: Role;
  csrf: string;
  /** The time zone of this user's pages: their own, or the fleet's. */
  zone: string;
  /** The user's own zone (Settings), null: the fleet's. */
  ownZone: string | null;
}

export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InputError';
  }
}

const USER_NAME = /^[A-Za-z0-9._@-]{1,64}$/;
export const LOGIN_TTL_MS = 12 * 3600_000;
const FAILURES_ALLOWED = 5;
const FAILURE_WINDOW_MS = 15 * 60_000;

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

/** Adds a user or sets a new password and role for an existing one. */
export async function setUser(db: Sql, name: string, role: string, password: string): Promise<void> {
  if (!USER_NAME.test(name)) throw new InputError('a user name is 1 to 64 of A-Z a-z 0-9 . _ @ -');
  if (!(ROLES as readonly string[]).includes(role)) throw new InputError(`role must be one of ${ROLES.join(', ')}`);
  const problem = passwordProblem(password);
  if (problem !== null) throw new InputError(problem);
  await db.query(
    `INSERT INTO dashboard_users (name, role, password) VALUES ($1, $2, $3)
     ON CONFLICT (name) DO UPDATE SET role = EXCLUDED.role, password = EXCLUDED.password`,
    [name, role, await hashPassword(password)],
  );
  // A new password ends the user's open logins.
  await db.query('DELETE FROM dashboard_logins WHERE user_name = $1', [name]);
}

/** Too many logins at once (from one address, or waiting for the password checker): try again in a moment. */
export class LoginBusy extends InputError {
  constructor(message: string) {
    super(message);
    this.name = 'LoginBusy';
  }
}

export interface LoginLimits {
  /** Logins in flight at once from one address; more are refused at once (default 4). */
  perAddress: number;
  /** Password checks (scrypt: CPU and 32 MiB each) running at once in this process (default 2). */
  checks: number;
  /** Logins of known names waiting for a check; more are refused at once (default 64). */
  waiting: number;
}

export const DEFAULT_LOGIN_LIMITS: LoginLimits = { perAddress: 4, checks: 2, waiting: 64 };

export interface LoginsOptions {
  limits?: Partial<LoginLimits>;
  /** The password check (tests count the calls). */
  verify?: (password: string, stored: string) => Promise<boolean>;
  /** The fleet's time zone: a user's pages are in it unless they chose their own (default UTC). */
  zone?: string;
}

export class Logins {
  private readonly limits: LoginLimits;
  private readonly verify: (password: string, stored: string) => Promise<boolean>;
  private readonly inFlight = new Map<string, number>();
  private readonly checks: Slots;
  /** How long a check takes here (ms, a running mean): what a login for a name no user has waits instead of one. */
  private checkMs: number | null = null;
  private firstCheck: Promise<number> | null = null;
  private readonly zone: string;
  /** The read of the users' names in flight, and when it started: every stranger's guess waits on this one query. */
  private names: { since: number; read: Promise<Set<string>> } | null = null;

  constructor(
    private readonly db: Sql,
    private readonly now: () => number,
    o: LoginsOptions = {},
  ) {
    this.limits = { ...DEFAULT_LOGIN_LIMITS, ...o.limits };
    this.verify = o.verify ?? verifyPassword;
    this.zone = o.zone ?? 'UTC';
    this.checks = new Slots(this.limits.checks, this.limits.waiting);
  }

  /**
   * A new login's cookie token, or an InputError saying why not (the same words for a wrong name or password). `from`
   * is the client's address: at most limits.perAddress of its logins are in flight at once.
   */
  async login(name: string, password: string, from = 'local'): Promise<{ token: string; login: Login }> {
    const inFlight = this.inFlight.get(from) ?? 0;
    if (inFlight >= this.limits.perAddress)
      throw new LoginBusy('too many logins in flight from your address: wait for them to finish');
    this.inFlight.set(from, inFlight + 1);
    try {
      return await this.attempt(name, password);
    } finally {
      const left = (this.inFlight.get(from) ?? 1) - 1;
      if (left > 0) this.inFlight.set(from, left);
      else this.inFlight.delete(from);
    }
  }

  private async attempt(name: string, password: string): Promise<{ token: string; login: Login }> {
    const now = this.now();
    if (!USER_NAME.test(name) || !(await this.userNames(performance.now())).has(name)) {
      // A name no user has answers as slowly as a wrong password, by waiting, not hashing, and costs no query of its
      // own (userNames): strangers' guesses take none of the checks or connections the users' own logins need.
      await sleep(await this.typicalCheckMs());
      throw new InputError('wrong user name or password');
    }
    // The attempt is counted before anything is checked: parallel guesses each take a number, and only the first
    // FAILURES_ALLOWED of a window are checked at all (a count read first would let a batch through together).
    // A name no user can have is not counted (nothing to guard, and no table row for any text sent).
    if ((await this.counted(name, now)) > FAILURES_ALLOWED)
      throw new InputError('too many failed logins for this user: try again in 15 minutes');
    const [row] = await this.db.query<{ role: Role; password: string; zone: string | null }>(
      'SELECT role, password, time_zone AS zone FROM dashboard_users WHERE name = $1',
      [name],
    );
    if (row === undefined) {
      await sleep(await this.typicalCheckMs());
      throw new InputError('wrong user name or password');
    }
    if (!(await this.check(password, row.password))) throw new InputError('wrong user name or password');
    await this.db.query('DELETE FROM dashboard_login_failures WHERE user_name = $1', [name]);
    const token = randomBytes(32).toString('base64url');
    const csrf = randomBytes(24).toString('base64url');
    await this.db.query(
      `INSERT INTO dashboard_logins (token_hash, user_name, csrf, created_at, expires_at)
       VALUES ($1, $2, $3, to_timestamp($4 / 1000.0), to_timestamp($5 / 1000.0))`,
      [sha256(token), name, csrf, now, now + LOGIN_TTL_MS],
    );
    await this.db.query('DELETE FROM dashboard_logins WHERE expires_at < to_timestamp($1 / 1000.0)', [now]);
    return { token, login: { user: name, role: row.role, csrf, zone: row.zone ?? this.zone, ownZone: row.zone } };
  }

  /**
   * The users' names as read by a query started at or after `since` (so a user added before a login began is
   * there): logins that ask together share one query, so any number of strangers hold at most one connection.
   */
  private async userNames(since: number): Promise<Set<string>> {
    for (;;) {
      const current = this.names;
      if (current !== null && current.since >= since) return current.read;
      if (current !== null) {
        await current.read.catch(() => undefined);
        if (this.names !== current) continue;
      }
      const read = this.db
        .query<{ name: string }>('SELECT name FROM dashboard_users')
        .then((rows) => new Set(rows.map((r) => r.name)));
      const entry = { since: performance.now(), read };
      this.names = entry;
      void read
        .catch(() => undefined)
        .finally(() => {
          if (this.names === entry) this.names = null;
        });
      return read;
    }
  }

  /** One password check in a slot, timed into checkMs. */
  private async check(password: string, stored: string): Promise<boolean> {
    const slot = this.checks.enter();
    if (slot === null) throw new LoginBusy('the dashboard is busy checking passwords: try again in a moment');
    await slot;
    const started = performance.now();
    try {
      return await this.verify(password, stored);
    } finally {
      const took = performance.now() - started;
      this.checkMs = this.checkMs === null ? took : this.checkMs * 0.8 + took * 0.2;
      this.checks.release();
    }
  }

  /** How long a check takes: the running mean, or one check of a hash nobody knows timed once (before any). */
  private typicalCheckMs(): Promise<number> {
    if (this.checkMs !== null) return Promise.resolve(this.checkMs);
    this.firstCheck ??= (async () => {
      const started = performance.now();
      await verifyPassword('not a password', DUMMY_HASH);
      return performance.now() - started;
    })();
    return this.firstCheck;
  }

  /**
   * Counts an attempt and returns the window's count with it (a count older than the window starts again at 1);
   * forgets counts older than the window. A success deletes the count.
   */
  private async counted(name: string, now: number): Promise<number> {
    const since = `to_timestamp(($2::float8 - $3::float8) / 1000)`;
    const [row] = await this.db.query<{ failures: number }>(
      `INSERT INTO dashboard_login_failures AS f (user_name, failures, first_at)
       VALUES ($1, 1, to_timestamp($2::float8 / 1000))
       ON CONFLICT (user_name) DO UPDATE SET
         failures = CASE WHEN f.first_at < ${since} THEN 1 ELSE f.failures + 1 END,
         first_at = CASE WHEN f.first_at < ${since} THEN EXCLUDED.first_at ELSE f.first_at END
       RETURNING failures`,
      [name, now, FAILURE_WINDOW_MS],
    );
    await this.db.query(
      'DELETE FROM dashboard_login_failures WHERE first_at < to_timestamp(($1::float8 - $2) / 1000)',
      [now, FAILURE_WINDOW_MS],
    );
    return Number(row!.failures);
  }

  /** The login a cookie's token opens, or null (unknown, expired, its user removed). */
  async lookup(token: string | undefined): Promise<Login | null> {
    if (token === undefined || !/^[A-Za-z0-9_-]{43}$/.test(token)) return null;
    const [row] = await this.db.query<Login>(
      `SELECT l.user_name AS user, u.role, l.csrf, coalesce(u.time_zone, $3) AS zone, u.time_zone AS "ownZone"
       FROM dashboard_logins l JOIN dashboard_users u ON u.name = l.user_name
       WHERE l.token_hash = $1 AND l.expires_at > to_timestamp($2 / 1000.0)`,
      [sha256(token), this.now(), this.zone],
    );
    return row ?? null;
  }

  async logout(token: string): Promise<void> {
    await this.db.query('DELETE FROM dashboard_logins WHERE token_hash = $1', [sha256(token)]);
  }
}

/** Sets a user's own time zone (null: the fleet's); the name is checked by the caller (zone.ts checkTimeZone). */
export async function setUserZone(db: Sql, name: string, zone: string | null): Promise<void> {
  await db.query('UPDATE dashboard_users SET time_zone = $2 WHERE name = $1', [name, zone]);
}

/** True when a form's CSRF token is the login's. */
export function csrfMatches(login: Login, given: string | null): boolean {
  if (given === null) return false;
  const a = Buffer.from(login.csrf);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** A valid hash of a random password nobody knows: timed once to learn how long a check takes. */
const DUMMY_HASH = 'scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$' + Buffer.alloc(32, 1).toString('base64');

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** `size` slots and at most `waiting` waiters in line for one. */
class Slots {
  private busy = 0;
  private readonly line: Array<() => void> = [];

  constructor(
    private readonly size: number,
    private readonly waiting: number,
  ) {}

  /** Resolves once a slot is this caller's (release() gives it back); null: the line is full. */
  enter(): Promise<void> | null {
    if (this.busy < this.size) {
      this.busy++;
      return Promise.resolve();
    }
    if (this.line.length >= this.waiting) return null;
    return new Promise((resolve) => this.line.push(resolve));
  }

  release(): void {
    const next = this.line.shift();
    if (next !== undefined) next();
    else this.busy--;
  }
}
