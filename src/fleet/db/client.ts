/**
 * The one face the fleet's code uses for its database, over PostgreSQL (`pg`, a pool of connections) or the embedded
 * PGlite (Postgres in WASM, in this process: a laptop's default, never a router's). Loaded lazily: neither driver is
 * read until a database is opened.
 */

export interface Sql {
  /** One statement with $1… parameters. */
  query<R = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<R[]>;
  /** Several statements, no parameters (migrations). */
  exec(text: string): Promise<void>;
}

export interface Db extends Sql {
  /** Runs fn in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T>;
  close(): Promise<void>;
  /** 'postgres' (a server) or 'pglite' (embedded). */
  readonly kind: 'postgres' | 'pglite';
}

export interface PostgresOptions {
  /** A libpq connection string: postgres://user:pass@host:port/db. */
  url: string;
  /** Connections in the pool (default 8). */
  max?: number;
}

/** A PostgreSQL server through a pool of `pg` connections. */
export async function openPostgres(options: PostgresOptions): Promise<Db> {
  const pg = (await import('pg')).default;
  // JIT off: PostgreSQL compiles a query whose estimated cost passes jit_above_cost, and the gaps view's estimate of
  // the rows above each router's spans_to (a third of its rows; really a minute's) made the Routers page's query
  // spend seconds compiling what ran in milliseconds. Nothing the fleet runs is a long analytic scan.
  const pool = new pg.Pool({ connectionString: options.url, max: options.max ?? 8, options: '-c jit=off' });
  // An idle connection the server closed (a restart) is an 'error' on the pool: the next query opens a new one.
  pool.on('error', () => undefined);
  const run = async (c: import('pg').Pool | import('pg').PoolClient, text: string, params?: readonly unknown[]) =>
    (await c.query(text, params as unknown[] | undefined)).rows;
  return {
    kind: 'postgres',
    query: (text, params) => run(pool, text, params) as never,
    async exec(text) {
      await pool.query(text);
    },
    async transaction(fn) {
      const client = await pool.connect();
      // A server that ends the connection while it is checked out is an 'error' on the client itself (the pool's
      // handler covers only idle ones): the transaction's query fails with it, the process goes on.
      if (client.listenerCount('error') === 0) client.on('error', () => undefined);
      let broken = false;
      try {
        await client.query('BEGIN');
        const tx: Sql = {
          query: (text, params) => run(client, text, params) as never,
          async exec(text) {
            await client.query(text);
          },
        };
        const out = await fn(tx);
        await client.query('COMMIT');
        return out;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {
          broken = true;
        });
        throw err;
      } finally {
        // A connection whose rollback failed (the server went away) is not given back to the pool.
        client.release(broken);
      }
    },
    close: () => pool.end(),
  };
}

/** The embedded database in dataDir (created on first open: ~10 s of initdb), or in memory without one. */
export async function openPglite(dataDir?: string): Promise<Db> {
  const { PGlite } = await import('@electric-sql/pglite');
  const db = await PGlite.create(dataDir);
  const wrap = (s: {
    query: (t: string, p?: unknown[]) => Promise<{ rows: unknown[] }>;
    exec: (t: string) => Promise<unknown>;
  }): Sql => ({
    query: async (text, params) => (await s.query(text, params as unknown[] | undefined)).rows as never,
    async exec(text) {
      await s.exec(text);
    },
  });
  const self = wrap(db);
  return {
    kind: 'pglite',
    ...self,
    transaction: (fn) => db.transaction((tx) => fn(wrap(tx))),
    close: () => db.close(),
  };
}

/** postgres://… or postgresql://… opens a server; anything else is a PGlite data directory (`memory:` for none). */
export function openDb(target: string): Promise<Db> {
  if (/^postgres(ql)?:\/\//.test(target)) return openPostgres({ url: target });
  return openPglite(target === 'memory:' ? undefined : target);
}
