import {
  AbstractMessageJournal,
  type CorruptionLocation,
  checkOpenOptions,
  checkPersistenceId,
  isPersistenceError,
  type JournalCapabilities,
  JournalCorruptedError,
  type JournalWrite,
  type Lease,
  LeaseLostError,
  type LeaseOptions,
  type LeaseProvider,
  type StoredEvent,
  type WriteConflicts,
} from '@cairn/actor-core';
import { isRetryable, type SqlDatabase, storageError } from './driver';
import { LeaseTable } from './lease-table';
import { idFromColumn, idToColumn } from './persistence-id';
import {
  type Connection,
  connect,
  POSTGRES_JOURNAL_OPTION_TYPES,
  type PostgresMessageJournalOptions,
} from './postgres-options';
import { rowChecksum } from './record-check';
import { prepareSchema, type SchemaNames } from './schema';

/** Rows one read query fetches. */
const READ_PAGE = 2000;
/** How often a batch rolled back by a deadlock (two processes' batches locking ids in other orders) is retried. */
const DEADLOCK_RETRIES = 5;

interface EventRow {
  seq_nr: number;
  written_at: number;
  serializer_id: number;
  payload: Buffer;
  crc32: number;
  tags: string[];
}

/**
 * A journal in PostgreSQL, shared by any number of processes.
 *
 * Appends of one process are group-committed: the appends queued while a commit is in flight go to the
 * server as ONE statement (arrays unnested into the streams and journal tables), which checks per id that
 * the stored highest sequenceNr is the one the id's events continue. An id another process wrote
 * meanwhile is left out of that statement (its appends fail with SequenceConflictError when they expected
 * a number, are numbered again otherwise) while the other ids commit. Up to `poolSize` such commits are in
 * flight at once, never two of one id. The streams table holds each id's highest, so a writer still
 * holding an old number after truncateBefore conflicts instead of reusing it.
 *
 * Every read checks each row's CRC-32; a row altered behind Cairn's back rejects with
 * JournalCorruptedError naming the table, id and sequenceNr. When the connection fails during a write
 * the append rejects with StorageError ("outcome unknown"): recovery reads what really committed.
 */
export class PostgresMessageJournal<M = unknown> extends AbstractMessageJournal<M> implements LeaseProvider {
  /**
   * Persistent; commits run concurrently; several processes may write (the core reads highest sequence
   * numbers from the database, never from memory); grants exclusive leases per id.
   */
  readonly capabilities: JournalCapabilities = {
    persistent: true,
    concurrentCommits: true,
    sharedWriters: true,
    leases: true,
    import: true,
    flush: true,
    metrics: true,
  };
  /** The schema holding the tables. */
  readonly schema: string;
  private readonly db: SqlDatabase;
  private readonly names: SchemaNames;
  private readonly poolSize: number;
  private readonly writeSql: string;
  private readonly leases: LeaseTable;

  private constructor(options: PostgresMessageJournalOptions, connection: Connection) {
    super(options);
    this.db = connection.db;
    this.names = connection.names;
    this.poolSize = connection.poolSize;
    this.schema = connection.names.name;
    this.writeSql = groupCommitStatement(this.names);
    this.leases = new LeaseTable(this.db, this.names, (what, writing, call) => this.run(what, writing, call));
  }

  /**
   * Takes the exclusive lease of `persistenceId` for this journal's process (see Lease): refused with
   * LeaseHeldError naming the holder when another holder keeps it longer than `waitMs` (default 0). While
   * held, every append of this journal to the id is stored only if the lease is still this one (checked in
   * the group commit statement), and fails with LeaseLostError otherwise. Renewed every third of `ttlMs`
   * (default 15000) until released or the journal closes.
   */
  async acquireLease(persistenceId: string, options: LeaseOptions = {}): Promise<Lease> {
    this.checkOpen();
    checkPersistenceId(persistenceId);
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
    const { holder, waitMs, ttlMs } = options;
    if (holder !== undefined && (typeof holder !== 'string' || holder.length === 0)) {
      throw new TypeError('options.holder must be a non-empty string');
    }
    for (const [name, value] of [
      ['waitMs', waitMs],
      ['ttlMs', ttlMs],
    ] as const) {
      if (value !== undefined && !(Number.isSafeInteger(value) && value >= (name === 'ttlMs' ? 30 : 0))) {
        throw new RangeError(
          `options.${name} must be an integer >= ${name === 'ttlMs' ? 30 : 0}, got ${String(value)}`,
        );
      }
    }
    return this.leases.acquire(persistenceId, options);
  }

  /**
   * Connects (lazily, through a pool of `poolSize`) and creates the schema and tables when missing.
   * Defaults: schema "cairn", poolSize 4, statementTimeoutMs 30000, maxBatchSize 1000,
   * maxBatchDelayMs 100, serializer "msgpack". Durable as the server is configured (synchronous_commit
   * on, PostgreSQL's default, makes every acknowledged append survive a server crash).
   * @throws TypeError or RangeError for bad options; StorageError when the server cannot be reached or
   *   its schema was made by a newer version.
   */
  static async open<M = unknown>(options: PostgresMessageJournalOptions): Promise<PostgresMessageJournal<M>> {
    checkOpenOptions('PostgresMessageJournal', options, POSTGRES_JOURNAL_OPTION_TYPES);
    const connection = connect(options, 'journal');
    let journal: PostgresMessageJournal<M>;
    try {
      journal = new PostgresMessageJournal<M>(options, connection);
      await prepareSchema(connection.db, connection.names).catch((e: unknown) => {
        if (isPersistenceError(e)) throw e;
        throw storageError(
          e,
          `opening journal schema "${connection.names.name}"`,
          connection.db.target,
          false,
        );
      });
    } catch (e) {
      await connection.db.close().catch(() => undefined);
      throw e;
    }
    return journal;
  }

  protected override maxConcurrentCommits(): number {
    return this.poolSize;
  }

  protected async _highestSequenceNr(persistenceId: string): Promise<number> {
    const [row] = await this.run('highestSequenceNr', false, () =>
      this.db.query<{ highest: number }>(
        `SELECT highest FROM ${this.names.streams} WHERE persistence_id = $1`,
        [idToColumn(persistenceId)],
      ),
    );
    return row?.highest ?? 0;
  }

  protected override async _lowWaterMark(persistenceId: string): Promise<number> {
    const [row] = await this.run('read', false, () =>
      this.db.query<{ lowest: number }>(
        `SELECT lowest FROM ${this.names.streams} WHERE persistence_id = $1`,
        [idToColumn(persistenceId)],
      ),
    );
    return row?.lowest ?? 1;
  }

  protected async _write(writes: readonly JournalWrite[]): Promise<WriteConflicts> {
    // The core gives each id's writes as one consecutive run: collapse them to one chain per id, in id
    // order (so two processes' batches lock the stream rows in the same order).
    const chains = new Map<string, { prev: number; last: number; id: string; epoch: number }>();
    const events: { column: string; e: StoredEvent }[] = [];
    for (const w of writes) {
      const column = idToColumn(w.persistenceId);
      const first = w.events[0]!.sequenceNr;
      const last = w.events[w.events.length - 1]!.sequenceNr;
      const chain = chains.get(column);
      if (chain) chain.last = last;
      else
        chains.set(column, {
          prev: first - 1,
          last,
          id: w.persistenceId,
          epoch: this.leases.epochOf(w.persistenceId) ?? -1,
        });
      for (const e of w.events) events.push({ column, e });
    }
    const ids = [...chains.keys()].sort();
    const params = [
      ids,
      ids.map((id) => chains.get(id)!.prev),
      ids.map((id) => chains.get(id)!.last),
      events.map((x) => x.column),
      events.map((x) => x.e.sequenceNr),
      events.map((x) => x.e.timestamp),
      events.map((x) => x.e.serializerId),
      events.map((x) => Buffer.from(x.e.payload.buffer, x.e.payload.byteOffset, x.e.payload.byteLength)),
      events.map((x) =>
        rowChecksum(x.column, x.e.sequenceNr, x.e.timestamp, x.e.serializerId, x.e.payload, x.e.tags),
      ),
      ids.map((id) => chains.get(id)!.epoch),
      // One JSON array per event ('' for none): PostgreSQL's arrays of arrays must be rectangular.
      events.map((x) => (x.e.tags && x.e.tags.length > 0 ? JSON.stringify(x.e.tags) : '')),
    ];
    const stored = await this.run('append', true, async () => {
      for (let attempt = 0; ; attempt++) {
        try {
          return await this.db.query<{ persistence_id: string }>(this.writeSql, params);
        } catch (e) {
          // A deadlock or serialization failure rolled the statement back whole: nothing was stored.
          if (!isRetryable(e) || attempt >= DEADLOCK_RETRIES) throw e;
        }
      }
    });
    if (stored.length === ids.length) return new Map();
    const ok = new Set(stored.map((r) => r.persistence_id));
    const conflicting = ids.filter((id) => !ok.has(id));
    const actual = await this.run('append', false, () =>
      this.db.query<{
        persistence_id: string;
        highest: number;
        lease_epoch: number;
        lease_holder: string | null;
      }>(
        `SELECT persistence_id, highest, lease_epoch, lease_holder FROM ${this.names.streams}
         WHERE persistence_id = ANY($1::text[])`,
        [conflicting],
      ),
    );
    const rows = new Map(actual.map((r) => [r.persistence_id, r]));
    return new Map<string, number | Error>(
      conflicting.map((column): [string, number | Error] => {
        const { id, epoch } = chains.get(column)!;
        const row = rows.get(column);
        // Fenced: the lease this process wrote under passed to another holder.
        if (epoch >= 0 && row?.lease_epoch !== epoch) {
          return [id, new LeaseLostError(id, epoch, row?.lease_holder ?? undefined)];
        }
        return [id, row?.highest ?? 0];
      }),
    );
  }

  protected async *_read(
    persistenceId: string,
    fromSequenceNr: number,
    toSequenceNr: number,
    max: number,
  ): AsyncIterable<readonly StoredEvent[]> {
    const column = idToColumn(persistenceId);
    let from = fromSequenceNr;
    let left = max;
    while (left > 0 && from <= toSequenceNr) {
      const limit = Math.min(READ_PAGE, left);
      const rows = await this.run('read', false, () =>
        this.db.query<EventRow>(
          `SELECT seq_nr, written_at, serializer_id, payload, crc32, tags FROM ${this.names.journal}
           WHERE persistence_id = $1 AND seq_nr >= $2 AND seq_nr <= $3 ORDER BY seq_nr LIMIT $4`,
          [column, from, toSequenceNr, limit],
        ),
      );
      if (rows.length === 0) return;
      const page: StoredEvent[] = new Array(rows.length);
      for (let i = 0; i < rows.length; i++) {
        const row = rows[i]!;
        const expected = rowChecksum(
          column,
          row.seq_nr,
          row.written_at,
          row.serializer_id,
          row.payload,
          row.tags,
        );
        if (expected !== row.crc32) {
          throw new JournalCorruptedError({
            persistenceId,
            sequenceNr: row.seq_nr,
            ...this._locate(persistenceId, row.seq_nr),
            reason: `row checksum ${row.crc32} does not match its content (${expected})`,
          });
        }
        page[i] =
          row.tags.length > 0
            ? {
                sequenceNr: row.seq_nr,
                timestamp: row.written_at,
                serializerId: row.serializer_id,
                payload: row.payload,
                tags: row.tags,
              }
            : {
                sequenceNr: row.seq_nr,
                timestamp: row.written_at,
                serializerId: row.serializer_id,
                payload: row.payload,
              };
      }
      yield page;
      if (rows.length < limit) return;
      left -= rows.length;
      from = rows[rows.length - 1]!.seq_nr + 1;
    }
  }

  protected async _truncateBefore(persistenceId: string, sequenceNr: number): Promise<void> {
    await this.run('truncateBefore', true, () =>
      this.db.query(
        `WITH mark AS (
           UPDATE ${this.names.streams} SET lowest = GREATEST(lowest, $2)
           WHERE persistence_id = $1 RETURNING persistence_id
         )
         DELETE FROM ${this.names.journal} WHERE persistence_id = $1 AND seq_nr < $2`,
        [idToColumn(persistenceId), sequenceNr],
      ),
    );
  }

  protected override async _startAfter(persistenceId: string, highest: number): Promise<void> {
    const rows = await this.run('import', true, () =>
      this.db.query(
        `INSERT INTO ${this.names.streams} AS s (persistence_id, highest, lowest) VALUES ($1, $2::int8, $2::int8 + 1)
         ON CONFLICT (persistence_id) DO UPDATE SET highest = EXCLUDED.highest, lowest = EXCLUDED.lowest
         WHERE s.highest = 0
         RETURNING persistence_id`,
        [idToColumn(persistenceId), highest],
      ),
    );
    if (rows.length === 0) {
      throw new RangeError(`"${persistenceId}" was written by another process meanwhile; nothing recorded`);
    }
  }

  protected async *_persistenceIds(): AsyncIterable<string> {
    let after: string | undefined;
    for (;;) {
      const rows = await this.run('persistenceIds', false, () =>
        after === undefined
          ? this.db.query<{ persistence_id: string }>(
              `SELECT persistence_id FROM ${this.names.streams} WHERE highest > 0
               ORDER BY persistence_id LIMIT ${READ_PAGE}`,
            )
          : this.db.query<{ persistence_id: string }>(
              `SELECT persistence_id FROM ${this.names.streams} WHERE highest > 0 AND persistence_id > $1
               ORDER BY persistence_id LIMIT ${READ_PAGE}`,
              [after],
            ),
      );
      for (const row of rows) yield idFromColumn(row.persistence_id);
      if (rows.length < READ_PAGE) return;
      after = rows[rows.length - 1]!.persistence_id;
    }
  }

  protected async _close(): Promise<void> {
    await this.leases.releaseAll();
    await this.db.close();
  }

  protected override _locate(
    persistenceId: string,
    sequenceNr: number,
  ): Pick<CorruptionLocation, 'file' | 'offset' | 'key'> {
    return { key: `${this.names.journal} (${persistenceId}, ${sequenceNr})` };
  }

  /** Runs a database call; its failure becomes a StorageError without secrets ("outcome unknown" for writes). */
  private async run<T>(what: string, writing: boolean, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (e) {
      if (isPersistenceError(e) || e instanceof RangeError) throw e;
      throw storageError(e, `journal ${what}`, this.db.target, writing);
    }
  }
}

/**
 * The group commit: one statement, so one round trip and one WAL flush for the whole batch. $1..$3 and
 * $10 give one chain per id (the highest it continues, its new highest, the lease epoch it writes under
 * or -1); $4..$9 and $11 (tags as a JSON array, '' for none) the events. An id whose stored highest is not the one its chain continues, or whose
 * lease epoch moved on, is left out (no stream update, no event rows); the statement returns the ids it
 * stored.
 */
function groupCommitStatement(s: SchemaNames): string {
  return `
    WITH input AS (
      SELECT * FROM unnest($1::text[], $2::int8[], $3::int8[], $10::int8[]) AS t(persistence_id, prev, last, epoch)
    ),
    created AS (
      INSERT INTO ${s.streams} AS s (persistence_id, highest)
      SELECT persistence_id, last FROM input WHERE prev = 0
      ON CONFLICT (persistence_id) DO UPDATE SET highest = EXCLUDED.highest
      WHERE s.highest = 0
        AND (SELECT i.epoch FROM input i WHERE i.persistence_id = s.persistence_id) IN (-1, s.lease_epoch)
      RETURNING s.persistence_id
    ),
    advanced AS (
      UPDATE ${s.streams} AS s SET highest = input.last FROM input
      WHERE s.persistence_id = input.persistence_id AND input.prev > 0 AND s.highest = input.prev
        AND input.epoch IN (-1, s.lease_epoch)
      RETURNING s.persistence_id
    ),
    stored AS (
      SELECT persistence_id FROM created UNION ALL SELECT persistence_id FROM advanced
    ),
    inserted AS (
      INSERT INTO ${s.journal} (persistence_id, seq_nr, written_at, serializer_id, payload, crc32, tags)
      SELECT e.persistence_id, e.seq_nr, e.written_at, e.serializer_id, e.payload, e.crc32,
        CASE WHEN e.tags = '' THEN '{}'::text[] ELSE ARRAY(SELECT jsonb_array_elements_text(e.tags::jsonb)) END
      FROM unnest($4::text[], $5::int8[], $6::int8[], $7::int4[], $8::bytea[], $9::int8[], $11::text[])
        AS e(persistence_id, seq_nr, written_at, serializer_id, payload, crc32, tags)
      WHERE e.persistence_id IN (SELECT persistence_id FROM stored)
      RETURNING 1
    )
    SELECT persistence_id FROM stored`;
}
