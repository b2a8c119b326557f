/**
 * Who may see the dashboard: users with a role (admin: sees and acts; operator: sees only), logins as random tokens in
 * an HttpOnly, SameSite=Strict cookie whose SHA-256 is the database's key, and a CSRF token per login that every
 * form that changes something carries. Failed logins are limited per user name (a guessing attacker waits), counted
 * in the database so that several dashboard processes share one count.
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

export class Logins {
  constructor(
    private readonly db: Sql,
    private readonly now: () => number,
  ) {}

  /** A new login's cookie token, or an InputError saying why not (the same words for a wrong name or password). */
  async login(name: string, password: string): Promise<{ token: string; login: Login }> {
    const now = this.now();
    const [f] = await this.db.query<{ failures: number }>(
      `SELECT failures FROM dashboard_login_failures
       WHERE user_name = $1 AND first_at >= to_timestamp(($2::float8 - $3::float8) / 1000)`,
      [name, now, FAILURE_WINDOW_MS],
    );
    if (f !== undefined && Number(f.failures) >= FAILURES_ALLOWED)
      throw new InputError('too many failed logins for this user: try again in 15 minutes');
    const [row] = await this.db.query<{ role: Role; password: string }>(
      'SELECT role, password FROM dashboard_users WHERE name = $1',
      [name],
    );
    // A missing user still costs a hash, so a wrong name answers as slowly as a wrong password.
    const ok = await verifyPassword(password, row?.password ?? DUMMY_HASH);
    if (row === undefined || !ok) {
      // A name no user can have is not counted (nothing to guard, and no table row for any text sent).
      if (USER_NAME.test(name)) await this.failed(name, now);
      throw new InputError('wrong user name or password');
    }
    await this.db.query('DELETE FROM dashboard_login_failures WHERE user_name = $1', [name]);
    const token = randomBytes(32).toString('base64url');
    const csrf = randomBytes(24).toString('base64url');
    await this.db.query(
      `INSERT INTO dashboard_logins (token_hash, user_name, csrf, created_at, expires_at)
       VALUES ($1, $2, $3, to_timestamp($4 / 1000.0), to_timestamp($5 / 1000.0))`,
      [sha256(token), name, csrf, now, now + LOGIN_TTL_MS],
    );
    await this.db.query('DELETE FROM dashboard_logins WHERE expires_at < to_timestamp($1 / 1000.0)', [now]);
    return { token, login: { user: name, role: row.role, csrf } };
  }

  /** Counts a failure (a count older than the window starts again); forgets counts older than the window. */
  private async failed(name: string, now: number): Promise<void> {
    const since = `to_timestamp(($2::float8 - $3::float8) / 1000)`;
    await this.db.query(
      `INSERT INTO dashboard_login_failures AS f (user_name, failures, first_at)
       VALUES ($1, 1, to_timestamp($2::float8 / 1000))
       ON CONFLICT (user_name) DO UPDATE SET
         failures = CASE WHEN f.first_at < ${since} THEN 1 ELSE f.failures + 1 END,
         first_at = CASE WHEN f.first_at < ${since} THEN EXCLUDED.first_at ELSE f.first_at END`,
      [name, now, FAILURE_WINDOW_MS],
    );
    await this.db.query(
      'DELETE FROM dashboard_login_failures WHERE first_at < to_timestamp(($1::float8 - $2) / 1000)',
      [now, FAILURE_WINDOW_MS],
    );
  }

  /** The login a cookie's token opens, or null (unknown, expired, its user removed). */
  async lookup(token: string | undefined): Promise<Login | null> {
    if (token === undefined || !/^[A-Za-z0-9_-]{43}$/.test(token)) return null;
    const [row] = await this.db.query<Login>(
      `SELECT l.user_name AS user, u.role, l.csrf FROM dashboard_logins l JOIN dashboard_users u ON u.name = l.user_name
       WHERE l.token_hash = $1 AND l.expires_at > to_timestamp($2 / 1000.0)`,
      [sha256(token), this.now()],
    );
    return row ?? null;
  }

  async logout(token: string): Promise<void> {
    await this.db.query('DELETE FROM dashboard_logins WHERE token_hash = $1', [sha256(token)]);
  }
}

/** True when a form's CSRF token is the login's. */
export function csrfMatches(login: Login, given: string | null): boolean {
  if (given === null) return false;
  const a = Buffer.from(login.csrf);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** A valid hash of a random password nobody knows: what a login for an unknown user is checked against. */
const DUMMY_HASH = 'scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$' + Buffer.alloc(32, 1).toString('base64');
