export { openDb, openPglite, openPostgres, type Db, type PostgresOptions, type Sql } from './client.ts';
export { migrate, SchemaTooNewError } from './migrate.ts';
export { FLEET_MIGRATIONS, type Migration } from './schema.ts';
export { classifyFailure, databaseUnreachable, errorName, type DbErrorClass } from './errors.ts';
