import { isJournalId, newJournalId, ReadOnlyError, StorageError } from '@cairn/actor-core';
import type { SqlDatabase, SqlSession } from './driver';

/**
 * The layout this version of @cairn/postgres reads and writes. A newer one in the database is refused; an
 * older one is brought up to date on open (2 added the journal id, the ordering floor of queries and projection statuses).
 */
export const SCHEMA_VERSION = 2;

/** A validated schema name, quoted for SQL, and the table names in it. */
export class SchemaNames {
  readonly quoted: string;
  readonly meta: string;
  readonly streams: string;
  readonly journal: string;
  readonly snapshots: string;
  readonly offsets: string;
  readonly floor: string;
  /** The NOTIFY channel on which journals announce commits to live queries of other processes. */
  readonly channel: string;

  constructor(readonly name: string) {
    if (typeof name !== 'string' || !/^[a-z_][a-z0-9_]{0,62}$/.test(name)) {
      throw new TypeError(
        `schema must be a lower-case SQL identifier (letters, digits, _; at most 63), got ${JSON.stringify(name)}`,
      );
    }
    this.quoted = `"${name}"`;
    this.meta = `${this.quoted}.cairn_meta`;
    this.streams = `${this.quoted}.streams`;
    this.journal = `${this.quoted}.journal`;
    this.snapshots = `${this.quoted}.snapshots`;
    this.offsets = `${this.quoted}.offsets`;
    this.floor = `${this.quoted}.ordering_floor`;
    this.channel = `cairn_${name}`.slice(0, 63);
  }
}

function ddl(s: SchemaNames): string[] {
  return [
    `CREATE SCHEMA IF NOT EXISTS ${s.quoted}`,
    `CREATE TABLE IF NOT EXISTS ${s.meta} (key text PRIMARY KEY, value text NOT NULL)`,
    // One row per id: the highest sequenceNr ever assigned (what appends are checked against, so a
    // truncated id keeps its numbering), the lowest one a read may still return, and its lease.
    `CREATE TABLE IF NOT EXISTS ${s.streams} (
      persistence_id text PRIMARY KEY,
      highest bigint NOT NULL,
      lowest bigint NOT NULL DEFAULT 1,
      lease_holder text,
      lease_epoch bigint NOT NULL DEFAULT 0,
      lease_until timestamptz
    )`,
    // tx_id + position give the global order (a row is visible to readers only once every transaction
    // that could commit before it has finished); crc32 covers id, sequenceNr, timestamp, serializer, payload.
    `CREATE TABLE IF NOT EXISTS ${s.journal} (
      persistence_id text NOT NULL,
      seq_nr bigint NOT NULL,
      tx_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
      position bigserial NOT NULL,
      written_at bigint NOT NULL,
      tags text[] NOT NULL DEFAULT '{}',
      serializer_id integer NOT NULL,
      payload bytea NOT NULL,
      crc32 bigint NOT NULL,
      PRIMARY KEY (persistence_id, seq_nr)
    )`,
    `CREATE INDEX IF NOT EXISTS journal_global_order ON ${s.journal} (tx_id, position)`,
    // The global order's head must not go back when truncation deletes the last events: each truncation
    // keeps the highest (tx_id, position) it deleted here (see PostgresMessageJournal's queries).
    `CREATE TABLE IF NOT EXISTS ${s.floor} (
      tx_id xid8 NOT NULL,
      position bigint NOT NULL,
      PRIMARY KEY (tx_id, position)
    )`,
    `CREATE TABLE IF NOT EXISTS ${s.snapshots} (
      persistence_id text NOT NULL,
      seq_nr bigint NOT NULL,
      written_at bigint NOT NULL,
      serializer_id integer NOT NULL,
      payload bytea NOT NULL,
      crc32 bigint NOT NULL,
      PRIMARY KEY (persistence_id, seq_nr)
    )`,
    // One row per projection: its offset (NULL once deleted) and its status record (opaque JSON).
    `CREATE TABLE IF NOT EXISTS ${s.offsets} (
      projection text PRIMARY KEY,
      offset_value text,
      status text,
      updated_at timestamptz NOT NULL DEFAULT now()
    )`,
    `ALTER TABLE ${s.offsets} ALTER COLUMN offset_value DROP NOT NULL`,
    `ALTER TABLE ${s.offsets} ADD COLUMN IF NOT EXISTS status text`,
  ];
}

async function storedVersion(session: SqlSession, s: SchemaNames): Promise<number | undefined> {
  const [row] = await session.query<{ value: string }>(
    `SELECT value FROM ${s.meta} WHERE key = 'schema_version'`,
  );
  return row === undefined ? undefined : Number(row.value);
}

function refuseNewer(version: number, s: SchemaNames, target: string): never {
  throw new StorageError(
    `schema "${s.name}" on ${target} has layout version ${version}, newer than this @cairn/postgres understands (${SCHEMA_VERSION}); upgrade @cairn/postgres, nothing was changed`,
  );
}

/**
 * Creates the schema and its tables when missing, in one transaction, and records the layout version.
 * Processes opening a fresh database at once are serialized by a transaction-scoped advisory lock, so
 * none of them fails on another's half-made tables. A database already at this version costs one query.
 */
export async function prepareSchema(db: SqlDatabase, s: SchemaNames): Promise<string> {
  const existing = await storedVersion(db, s).catch(() => undefined);
  if (existing === SCHEMA_VERSION) return readJournalId(db, s);
  if (existing !== undefined && existing > SCHEMA_VERSION) refuseNewer(existing, s, db.target);
  return db.transaction(async (tx) => {
    // Two int4 keys: a constant for Cairn, and the schema's hash.
    await tx.query(`SELECT pg_advisory_xact_lock(1667330418, hashtext($1))`, [s.name]);
    for (const statement of ddl(s)) await tx.query(statement);
    const version = await storedVersion(tx, s);
    if (version !== undefined && version > SCHEMA_VERSION) refuseNewer(version, s, db.target);
    await tx.query(
      `INSERT INTO ${s.meta} (key, value) VALUES ('schema_version', $1)
       ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`,
      [String(SCHEMA_VERSION)],
    );
    // The journal's id, kept with its data: offsets carry it, so one of another journal is refused.
    await tx.query(
      `INSERT INTO ${s.meta} (key, value) VALUES ('journal_id', $1) ON CONFLICT (key) DO NOTHING`,
      [newJournalId()],
    );
    return readJournalId(tx, s);
  });
}

async function readJournalId(session: SqlSession, s: SchemaNames): Promise<string> {
  const [row] = await session.query<{ value: string }>(
    `SELECT value FROM ${s.meta} WHERE key = 'journal_id'`,
  );
  if (!isJournalId(row?.value)) {
    throw new StorageError(
      `schema "${s.name}": ${s.meta} holds no valid journal_id (found ${JSON.stringify(row?.value ?? null)}); it was altered behind Cairn's back`,
    );
  }
  return row.value;
}

/**
 * For a read-only open: checks that the schema holds tables of this layout version, creating and changing
 * nothing, and returns the journal id. A missing schema is a StorageError (a read-only open never creates
 * one); an older layout a ReadOnlyError (bringing it up to date takes a writable open); a newer one is
 * refused as on any open.
 */
export async function checkSchemaForReading(db: SqlDatabase, s: SchemaNames): Promise<string> {
  const [found] = await db.query<{ meta: string | null }>(`SELECT to_regclass($1)::text AS meta`, [
    `${s.quoted}.cairn_meta`,
  ]);
  if (!found?.meta) {
    throw new StorageError(
      `no Cairn schema "${s.name}" on ${db.target} (no ${s.meta} table); a read-only open never creates one`,
    );
  }
  const version = await storedVersion(db, s);
  if (version === undefined) {
    throw new StorageError(
      `schema "${s.name}" on ${db.target} records no layout version; it was not made by Cairn or was altered`,
    );
  }
  if (version > SCHEMA_VERSION) refuseNewer(version, s, db.target);
  if (version < SCHEMA_VERSION) {
    throw new ReadOnlyError(
      `schema "${s.name}" on ${db.target}`,
      `it has layout version ${version}, which a writable open brings up to ${SCHEMA_VERSION}; a read-only open changes nothing`,
    );
  }
  return readJournalId(db, s);
}
