import {
  type AsyncTransactionalOffsetStore,
  checkOffsetToSave,
  checkProjectionName,
  isPersistenceError,
  JournalLockedError,
  type ProjectionLock,
  type ProjectionRecordStore,
  ReadOnlyError,
} from '@cairn/actor-core';
import { type SqlDatabase, type SqlSession, storageError } from './driver';
import type { SchemaNames } from './schema';

/** The transaction a `transact` body writes its read model through: one connection, inside BEGIN..COMMIT. */
export interface PostgresTransaction {
  /** Runs one statement in the transaction; resolves to its rows (bigint columns as numbers). */
  query<R = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<R[]>;
}

/** First key of the advisory locks that hold projection names (the second is the name's hash). */
const PROJECTION_LOCK_KEY = 1667330419;

/**
 * The postgres journal's OffsetStore: one row per projection in `<schema>.offsets` (offset, status),
 * written by single statements (durable as the server's commits are).
 *
 * Exactly-once projections: `transact(name, offset, body)` opens a transaction on one pooled connection,
 * runs `body(tx)` (the handler writes its read model with `tx.query(...)`), saves the offset in the same
 * transaction and commits: after a crash both are there or neither is. A body that throws rolls
 * everything back; its error is rethrown.
 *
 * Projection locks: `lockProjection(name)` takes a session advisory lock on a connection of its own
 * (outside the pool) that it keeps until `release()` or the journal closes. The server releases it when
 * that connection drops, so a process that died (SIGKILL, lost network) holds nothing. One connection
 * per running projection; names are told apart by a 32-bit hash of schema and name (two names whose
 * hashes collide cannot run at once).
 */
export class PostgresOffsetStore
  implements ProjectionRecordStore, AsyncTransactionalOffsetStore<PostgresTransaction>
{
  /** Keeps statuses and cross-process locks besides offsets; saves an offset in the read model's transaction. */
  readonly capabilities = { projectionRecords: true, transactions: true } as const;
  private readonly held = new Set<() => Promise<void>>();

  /** @internal Made by PostgresMessageJournal.offsetStore(). */
  constructor(
    /** The journal's check: JournalClosedError once it is closing. */
    private readonly checkOpen: () => void,
    private readonly db: SqlDatabase,
    private readonly schema: SchemaNames,
    /** The journal was opened read-only: every write, lock and transaction is refused with ReadOnlyError. */
    private readonly readOnly = false,
  ) {}

  async load(projectionName: string): Promise<string | undefined> {
    checkProjectionName(projectionName);
    const [row] = await this.run('load', false, (s) =>
      s.query<{ offset_value: string | null }>(
        `SELECT offset_value FROM ${this.schema.offsets} WHERE projection = $1`,
        [projectionName],
      ),
    );
    return row?.offset_value ?? undefined;
  }

  async save(projectionName: string, offset: string): Promise<void> {
    checkProjectionName(projectionName);
    checkOffsetToSave(offset);
    await this.run('save', true, (s) => this.saveIn(s, projectionName, offset));
  }

  async names(): Promise<string[]> {
    const rows = await this.run('names', false, (s) =>
      s.query<{ projection: string }>(
        `SELECT projection FROM ${this.schema.offsets}
         WHERE offset_value IS NOT NULL OR status IS NOT NULL ORDER BY projection COLLATE "C"`,
      ),
    );
    return rows.map((r) => r.projection);
  }

  async deleteOffset(projectionName: string): Promise<void> {
    checkProjectionName(projectionName);
    await this.run('deleteOffset', true, (s) =>
      s.query(
        `UPDATE ${this.schema.offsets} SET offset_value = NULL, updated_at = now() WHERE projection = $1`,
        [projectionName],
      ),
    );
  }

  async saveStatus(projectionName: string, status: string): Promise<void> {
    checkProjectionName(projectionName);
    if (typeof status !== 'string') throw new TypeError(`status must be a string, got ${typeof status}`);
    await this.run('saveStatus', true, (s) =>
      s.query(
        `INSERT INTO ${this.schema.offsets} (projection, status) VALUES ($1, $2)
         ON CONFLICT (projection) DO UPDATE SET status = EXCLUDED.status, updated_at = now()`,
        [projectionName, status],
      ),
    );
  }

  async loadStatus(projectionName: string): Promise<string | undefined> {
    checkProjectionName(projectionName);
    const [row] = await this.run('loadStatus', false, (s) =>
      s.query<{ status: string | null }>(`SELECT status FROM ${this.schema.offsets} WHERE projection = $1`, [
        projectionName,
      ]),
    );
    return row?.status ?? undefined;
  }

  async projectionLocked(projectionName: string): Promise<boolean> {
    checkProjectionName(projectionName);
    const [row] = await this.run('projectionLocked', false, (s) =>
      s.query<{ locked: boolean }>(
        `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = $1::int4::oid
           AND objid = hashtext($2)::oid AND objsubid = 2 AND granted) AS locked`,
        [PROJECTION_LOCK_KEY, this.lockName(projectionName)],
      ),
    );
    return row?.locked === true;
  }

  /**
   * Takes the projection's lock (see the class comment), or rejects with JournalLockedError naming the
   * process that holds it (its pid as it told the server in application_name, and since when).
   */
  async lockProjection(projectionName: string): Promise<ProjectionLock> {
    checkProjectionName(projectionName);
    this.checkOpen();
    this.refuseWhenReadOnly('lockProjection');
    const key = this.lockName(projectionName);
    const where = `${this.db.target} schema "${this.schema.name}" projection "${projectionName}"`;
    let connection: Awaited<ReturnType<SqlDatabase['dedicated']>>;
    try {
      connection = await this.db.dedicated(`cairn projection lock pid=${process.pid}`);
    } catch (e) {
      throw storageError(e, `lockProjection "${projectionName}"`, this.db.target, false);
    }
    try {
      const [row] = await connection.query<{ taken: boolean }>(
        'SELECT pg_try_advisory_lock($1, hashtext($2)) AS taken',
        [PROJECTION_LOCK_KEY, key],
      );
      if (!row?.taken) {
        const [holder] = await connection.query<{ application_name: string; since: Date | null }>(
          `SELECT a.application_name, a.backend_start AS since FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
           WHERE l.locktype = 'advisory' AND l.classid = $1::int4::oid AND l.objid = hashtext($2)::oid
             AND l.objsubid = 2 AND l.granted LIMIT 1`,
          [PROJECTION_LOCK_KEY, key],
        );
        const pid = /pid=(\d+)/.exec(holder?.application_name ?? '')?.[1];
        throw new JournalLockedError(where, {
          ...(pid ? { pid: Number(pid) } : {}),
          ...(holder?.since ? { since: holder.since } : {}),
        });
      }
    } catch (e) {
      await connection.close();
      if (isPersistenceError(e)) throw e;
      throw storageError(e, `lockProjection "${projectionName}"`, this.db.target, false);
    }
    let released: Promise<void> | undefined;
    const release = () => {
      released ??= (async () => {
        this.held.delete(release);
        // Ending the session releases its advisory locks.
        await connection.close();
      })();
      return released;
    };
    this.held.add(release);
    return { release };
  }

  /**
   * Exactly-once: runs `body(tx)` and saves `offset` under `projectionName` in ONE transaction, and
   * resolves to what `body` resolved to. Whatever `body` writes through `tx` commits together with the
   * offset, or, if `body` throws, none of it does (the error is rethrown, the saved offset stays the
   * previous one). When the connection fails at COMMIT the outcome is unknown: StorageError saying so;
   * the projection's next run reads the offset that really committed.
   */
  async transact<T>(
    projectionName: string,
    offset: string,
    body: (tx: PostgresTransaction) => T | Promise<T>,
  ): Promise<T> {
    checkProjectionName(projectionName);
    checkOffsetToSave(offset);
    if (typeof body !== 'function') throw new TypeError('body must be a function');
    this.checkOpen();
    this.refuseWhenReadOnly('transact');
    let failedInBody = false;
    try {
      return await this.db.transaction(async (tx) => {
        let result: T;
        try {
          result = await body(tx);
        } catch (e) {
          failedInBody = true;
          throw e;
        }
        await this.saveIn(tx, projectionName, offset);
        return result;
      });
    } catch (e) {
      if (failedInBody || isPersistenceError(e)) throw e;
      throw storageError(e, `transact "${projectionName}"`, this.db.target, true);
    }
  }

  /** @internal Called by the journal before it closes its pool: gives up the locks still held. */
  async releaseAll(): Promise<void> {
    await Promise.allSettled([...this.held].map((release) => release()));
  }

  private saveIn(session: SqlSession, projectionName: string, offset: string) {
    return session.query(
      `INSERT INTO ${this.schema.offsets} (projection, offset_value) VALUES ($1, $2)
       ON CONFLICT (projection) DO UPDATE SET offset_value = EXCLUDED.offset_value, updated_at = now()`,
      [projectionName, offset],
    );
  }

  private lockName(projectionName: string): string {
    return `${this.schema.name}/${projectionName}`;
  }

  private refuseWhenReadOnly(operation: string): void {
    if (this.readOnly) {
      throw new ReadOnlyError(
        `${this.db.target} schema "${this.schema.name}"`,
        `offsets ${operation} refused, nothing written`,
      );
    }
  }

  private async run<T>(what: string, writing: boolean, call: (s: SqlSession) => Promise<T>): Promise<T> {
    this.checkOpen();
    if (writing) this.refuseWhenReadOnly(what);
    try {
      return await call(this.db);
    } catch (e) {
      if (isPersistenceError(e)) throw e;
      throw storageError(e, `offsets ${what}`, this.db.target, writing);
    }
  }
}
