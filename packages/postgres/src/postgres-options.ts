import {
  JOURNAL_OPTION_TYPES,
  type JournalOptions,
  type OptionSchema,
  type OptionType,
  SNAPSHOT_OPTION_TYPES,
  type SnapshotStoreOptions,
} from '@cairn/actor-core';
import { openPgDatabase, type SqlDatabase } from './driver';
import { registerConnectionString } from './mask';
import { SchemaNames } from './schema';

/** How to reach the database; shared by the journal, the snapshot store and the offset store. */
export interface PostgresConnectionOptions {
  /**
   * `postgres://user:password@host:port/database`. Omitted: node-postgres's standard variables apply
   * (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE). The password never appears in an error or report.
   */
  readonly connectionString?: string;
  /** The schema holding Cairn's tables, created (with them) on open when missing. Default "cairn". */
  readonly schema?: string;
  /**
   * Connections in the pool. Default 4. The journal keeps up to this many group commits in flight (never
   * two of one id); reads share the pool.
   */
  readonly poolSize?: number;
  /** statement_timeout of every connection, in ms; 0 = none. Default 30000. */
  readonly statementTimeoutMs?: number;
}

export interface PostgresMessageJournalOptions extends JournalOptions, PostgresConnectionOptions {}
export interface PostgresSnapshotStoreOptions extends SnapshotStoreOptions, PostgresConnectionOptions {}

export const DEFAULT_SCHEMA = 'cairn';
export const DEFAULT_POOL_SIZE = 4;
export const DEFAULT_STATEMENT_TIMEOUT_MS = 30_000;

const CONNECTION_OPTION_TYPES: Readonly<Record<string, OptionType>> = {
  connectionString: 'string',
  schema: {
    check: (v) => typeof v === 'string' && /^[a-z_][a-z0-9_]{0,62}$/.test(v),
    expected: 'a lower-case SQL identifier',
  },
  poolSize: { check: (v) => Number.isSafeInteger(v) && (v as number) >= 1, expected: 'an integer >= 1' },
  statementTimeoutMs: 'integer',
  readOnly: 'boolean',
};

const withoutPath = (types: Readonly<Record<string, OptionType>>) =>
  Object.fromEntries(Object.entries(types).filter(([k]) => k !== 'path'));

/** Every option PostgresMessageJournal.open takes: checked by open() and by the provider's validateOptions. */
export const POSTGRES_JOURNAL_OPTION_TYPES: OptionSchema = {
  ...withoutPath(JOURNAL_OPTION_TYPES),
  ...CONNECTION_OPTION_TYPES,
};

/** Every option PostgresSnapshotStore.open takes: checked by open() and by the provider's validateOptions. */
export const POSTGRES_SNAPSHOT_OPTION_TYPES: OptionSchema = {
  ...withoutPath(SNAPSHOT_OPTION_TYPES),
  ...CONNECTION_OPTION_TYPES,
};

/** The checked connection settings and the pool they open. */
export interface Connection {
  readonly db: SqlDatabase;
  readonly names: SchemaNames;
  readonly poolSize: number;
}

/**
 * Checks the connection options (TypeError/RangeError naming the option, nothing opened) and opens a
 * pool; connections are made on first use.
 */
export function connect(
  options: PostgresConnectionOptions & { readonly readOnly?: boolean },
  role: string,
): Connection {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError('options must be an object ({ connectionString, schema })');
  }
  const { connectionString, poolSize, statementTimeoutMs } = options;
  if (connectionString !== undefined && (typeof connectionString !== 'string' || connectionString === '')) {
    throw new TypeError('options.connectionString must be a non-empty string');
  }
  if (poolSize !== undefined && !(Number.isSafeInteger(poolSize) && poolSize >= 1)) {
    throw new RangeError(`options.poolSize must be an integer >= 1, got ${String(poolSize)}`);
  }
  if (
    statementTimeoutMs !== undefined &&
    !(Number.isSafeInteger(statementTimeoutMs) && statementTimeoutMs >= 0)
  ) {
    throw new RangeError(
      `options.statementTimeoutMs must be an integer >= 0, got ${String(statementTimeoutMs)}`,
    );
  }
  const names = new SchemaNames(options.schema ?? DEFAULT_SCHEMA);
  registerConnectionString(connectionString);
  const size = poolSize ?? DEFAULT_POOL_SIZE;
  const db = openPgDatabase({
    ...(connectionString !== undefined ? { connectionString } : {}),
    poolSize: size,
    statementTimeoutMs: statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS,
    applicationName: `cairn ${role}${options.readOnly ? ' (read-only)' : ''}`,
    ...(options.readOnly ? { readOnly: true } : {}),
  });
  return { db, names, poolSize: size };
}
