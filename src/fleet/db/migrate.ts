/**
 * Brings a fleet database to the newest schema: each migration not yet recorded in fleet_migrations runs in one
 * transaction with its record, under a transaction-scoped advisory lock, so several collectors started at once apply
 * each migration once and the others wait for it. A version this code does not know, in the band of a list it was
 * given (a newer sluice's migration), is refused: an older collector never writes into a newer schema.
 */
import { SluiceError } from '../../errors.ts';
import type { Db } from './client.ts';
import type { Migration } from './schema.ts';

/** pg_advisory_xact_lock's key for migrations ("sluice" in ASCII). */
const MIGRATION_LOCK = 0x736c75696365;

export class SchemaTooNewError extends SluiceError {
  constructor(readonly versions: readonly number[]) {
    super(
      'ERR_FLEET_SCHEMA_TOO_NEW',
      `the fleet database has migration(s) ${versions.join(', ')} this sluice does not know: ` +
        'run the newer sluice fleet (or another database)',
      { details: { versions } },
    );
  }
}

/** Which owner a version belongs to: 0 for 1–999 (the collector), 1 for 1000–1999 (the dashboard)… */
const band = (version: number): number => Math.floor(version / 1000);

/** Applies what is missing; returns the versions it applied (empty: the schema was current). */
export async function migrate(db: Db, migrations: readonly Migration[]): Promise<number[]> {
  const known = new Set<number>();
  for (const m of migrations) {
    if (!Number.isSafeInteger(m.version) || m.version < 1 || known.has(m.version))
      throw new Error(`fleet migration ${m.version} (${m.name}): versions must be distinct positive integers`);
    known.add(m.version);
  }
  const ordered = [...migrations].sort((a, b) => a.version - b.version);
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await tx.exec(
      'CREATE TABLE IF NOT EXISTS fleet_migrations (version int PRIMARY KEY, name text NOT NULL, ' +
        'applied_at timestamptz NOT NULL DEFAULT now())',
    );
    const done = new Set(
      (await tx.query<{ version: number }>('SELECT version FROM fleet_migrations')).map((r) => Number(r.version)),
    );
    // Only within the bands of the lists given (the collector's 1–999, the dashboard's 1000–1999): the collector alone
    // runs on a database the dashboard has also migrated.
    const bands = new Set([...known].map(band));
    const unknown = [...done].filter((v) => !known.has(v) && bands.has(band(v))).sort((a, b) => a - b);
    if (unknown.length > 0) throw new SchemaTooNewError(unknown);
    const applied: number[] = [];
    for (const m of ordered) {
      if (done.has(m.version)) continue;
      await tx.exec(m.sql);
      await tx.query('INSERT INTO fleet_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      applied.push(m.version);
    }
    return applied;
  });
}
