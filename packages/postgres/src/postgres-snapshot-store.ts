import {
  AbstractSnapshotStore,
  type CorruptionLocation,
  checkOpenOptions,
  isPersistenceError,
  SnapshotCorruptedError,
  type SnapshotMetadata,
  type SnapshotStoreCapabilities,
  StorageError,
  type StoredSnapshot,
} from '@cairn/actor-core';
import { type SqlDatabase, storageError } from './driver';
import { idFromColumn, idToColumn } from './persistence-id';
import {
  type Connection,
  connect,
  POSTGRES_SNAPSHOT_OPTION_TYPES,
  type PostgresSnapshotStoreOptions,
} from './postgres-options';
import { ReadBatcher } from './read-batcher';
import { rowChecksum } from './record-check';
import { checkSchemaForReading, prepareSchema, type SchemaNames } from './schema';

/** Ids per page of persistenceIds(). */
const IDS_PAGE = 1000;

/** The most ids one batched listing asks for. */
const LIST_BATCH = 500;

/** A row of a listing: every snapshot's metadata, the newest one's content too (payload null for others). */
interface ListedRow {
  persistence_id: string;
  seq_nr: number;
  written_at: number;
  serializer_id: number;
  payload: Buffer | null;
  crc32: number;
}

interface SnapshotRow {
  written_at: number;
  serializer_id: number;
  payload: Buffer;
  crc32: number;
}

/**
 * Snapshots in the `snapshots` table of the schema, one row per (persistenceId, sequenceNr), each with a
 * CRC-32 over its id, sequenceNr, timestamp, serializer and payload. A save is one upsert (atomic,
 * durable when it resolves, replacing a snapshot at the same sequenceNr); a row failing its check is
 * reported by loadLatest and skipped in favour of an older one, never deleted automatically.
 */
export class PostgresSnapshotStore<S = unknown> extends AbstractSnapshotStore<S> {
  /**
   * Snapshots survive close() and a reopen; several processes may share the table. Opens read-only
   * (`readOnly: true`: the schema must exist at this layout version, nothing is created or migrated,
   * save, delete and prune are refused with ReadOnlyError, and the server sessions are read-only).
   */
  readonly capabilities: SnapshotStoreCapabilities = {
    persistent: true,
    readOnly: true,
    health: true,
    import: true,
    metrics: true,
    listIds: true,
  };
  readonly schema: string;
  private readonly db: SqlDatabase;
  private readonly names: SchemaNames;
  /** The listings asked for at once (loadLatest of many ids: a recovery storm) go as one statement. */
  private readonly listings: ReadBatcher<string, ListedRow[]>;
  /**
   * The newest snapshot of each id listed, by "id\0sequenceNr": loadLatest lists and then loads the newest
   * (in the same tick), which then costs no second round trip. Dropped once loaded, and all at the next
   * turn of the event loop (a listing for delete or prune loads nothing).
   */
  private readonly listedNewest = new Map<string, SnapshotRow>();
  private dropListed: NodeJS.Immediate | undefined;

  private constructor(options: PostgresSnapshotStoreOptions, connection: Connection) {
    super(options);
    this.db = connection.db;
    this.names = connection.names;
    this.schema = connection.names.name;
    this.listings = new ReadBatcher(
      async (columns) => {
        const rows = await this.db.prepared<ListedRow>(
          `SELECT persistence_id, seq_nr, written_at, serializer_id, crc32,
             CASE WHEN seq_nr = max(seq_nr) OVER (PARTITION BY persistence_id) THEN payload END AS payload
           FROM ${this.names.snapshots} WHERE persistence_id = ANY($1::text[])`,
          [columns],
        );
        const found = new Map<string, ListedRow[]>();
        for (const row of rows) {
          const list = found.get(row.persistence_id);
          if (list) list.push(row);
          else found.set(row.persistence_id, [row]);
        }
        return found;
      },
      [],
      Math.max(1, Math.floor(connection.poolSize / 2)),
      LIST_BATCH,
    );
  }

  /**
   * Connects (lazily, through a pool of `poolSize`, default 4) and creates the schema and tables when
   * missing. Defaults: schema "cairn", statementTimeoutMs 30000, serializer "msgpack".
   * @throws TypeError or RangeError for bad options; StorageError when the server cannot be reached or
   *   its schema was made by a newer version.
   */
  static async open<S = unknown>(options: PostgresSnapshotStoreOptions): Promise<PostgresSnapshotStore<S>> {
    checkOpenOptions('PostgresSnapshotStore', options, POSTGRES_SNAPSHOT_OPTION_TYPES);
    const connection = connect(options, 'snapshots');
    try {
      const store = new PostgresSnapshotStore<S>(options, connection);
      const prepare = options.readOnly ? checkSchemaForReading : prepareSchema;
      await prepare(connection.db, connection.names).catch((e: unknown) => {
        if (isPersistenceError(e)) throw e;
        throw storageError(
          e,
          `opening snapshot schema "${connection.names.name}"`,
          connection.db.target,
          false,
        );
      });
      return store;
    } catch (e) {
      await connection.db.close().catch(() => undefined);
      throw e;
    }
  }

  protected async _save(snapshot: StoredSnapshot): Promise<void> {
    const { persistenceId, sequenceNr, timestamp, serializerId, payload } = snapshot;
    const column = idToColumn(persistenceId);
    await this.guard('save', true, () =>
      this.db.query(
        `INSERT INTO ${this.names.snapshots} (persistence_id, seq_nr, written_at, serializer_id, payload, crc32)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (persistence_id, seq_nr) DO UPDATE SET written_at = EXCLUDED.written_at,
           serializer_id = EXCLUDED.serializer_id, payload = EXCLUDED.payload, crc32 = EXCLUDED.crc32`,
        [
          column,
          sequenceNr,
          timestamp,
          serializerId,
          Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength),
          rowChecksum(column, sequenceNr, timestamp, serializerId, payload),
        ],
      ),
    );
  }

  protected async _list(persistenceId: string): Promise<SnapshotMetadata[]> {
    const column = idToColumn(persistenceId);
    const rows = await this.guard('list', false, () => this.listings.get(column));
    for (const row of rows) {
      if (row.payload === null) continue;
      this.listedNewest.set(`${column}\u0000${row.seq_nr}`, row as SnapshotRow);
      this.dropListed ??= setImmediate(() => {
        this.dropListed = undefined;
        this.listedNewest.clear();
      });
    }
    return rows.map((r) => ({ sequenceNr: r.seq_nr, timestamp: r.written_at }));
  }

  /** The distinct ids of the table, in pages of IDS_PAGE by id (keyset paging on the primary key). */
  protected override async *_persistenceIds(): AsyncGenerator<string> {
    let after: string | undefined;
    for (;;) {
      const from = after;
      const rows = await this.guard('persistenceIds', false, () =>
        from === undefined
          ? this.db.query<{ persistence_id: string }>(
              `SELECT DISTINCT persistence_id FROM ${this.names.snapshots}
               ORDER BY persistence_id LIMIT ${IDS_PAGE}`,
            )
          : this.db.query<{ persistence_id: string }>(
              `SELECT DISTINCT persistence_id FROM ${this.names.snapshots} WHERE persistence_id > $1
               ORDER BY persistence_id LIMIT ${IDS_PAGE}`,
              [from],
            ),
      );
      for (const row of rows) yield idFromColumn(row.persistence_id);
      if (rows.length < IDS_PAGE) return;
      after = rows[rows.length - 1]!.persistence_id;
    }
  }

  protected async _load(persistenceId: string, meta: SnapshotMetadata): Promise<StoredSnapshot> {
    const key = `${idToColumn(persistenceId)}\u0000${meta.sequenceNr}`;
    const listed = this.listedNewest.get(key);
    this.listedNewest.delete(key);
    const [row] = listed
      ? [listed]
      : await this.guard('load', false, () =>
          this.db.query<SnapshotRow>(
            `SELECT written_at, serializer_id, payload, crc32 FROM ${this.names.snapshots}
         WHERE persistence_id = $1 AND seq_nr = $2`,
            [idToColumn(persistenceId), meta.sequenceNr],
          ),
        );
    const where = this._locate(persistenceId, meta);
    if (row === undefined) {
      throw new StorageError(`snapshot ${where.key} disappeared between listing and loading it`);
    }
    const expected = rowChecksum(
      idToColumn(persistenceId),
      meta.sequenceNr,
      row.written_at,
      row.serializer_id,
      row.payload,
    );
    if (expected !== row.crc32) {
      throw new SnapshotCorruptedError({
        persistenceId,
        sequenceNr: meta.sequenceNr,
        ...where,
        reason: `row checksum ${row.crc32} does not match its content (${expected})`,
      });
    }
    return {
      persistenceId,
      sequenceNr: meta.sequenceNr,
      timestamp: row.written_at,
      serializerId: row.serializer_id,
      payload: row.payload,
    };
  }

  protected async _delete(persistenceId: string, snapshots: readonly SnapshotMetadata[]): Promise<void> {
    await this.guard('delete', true, () =>
      this.db.query(
        `DELETE FROM ${this.names.snapshots} WHERE persistence_id = $1 AND seq_nr = ANY($2::int8[])`,
        [idToColumn(persistenceId), snapshots.map((s) => s.sequenceNr)],
      ),
    );
  }

  protected async _close(): Promise<void> {
    if (this.dropListed) clearImmediate(this.dropListed);
    this.dropListed = undefined;
    this.listedNewest.clear();
    await this.db.close();
  }

  protected override _locate(
    persistenceId: string,
    meta: SnapshotMetadata,
  ): Pick<CorruptionLocation, 'file' | 'offset' | 'key'> {
    return { key: `${this.names.snapshots} (${persistenceId}, ${meta.sequenceNr})` };
  }

  private async guard<T>(what: string, writing: boolean, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (e) {
      if (isPersistenceError(e)) throw e;
      throw storageError(e, `snapshot ${what}`, this.db.target, writing);
    }
  }
}
