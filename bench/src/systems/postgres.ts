import * as path from 'node:path';
import { decodeValue, encodeValue } from '../event-codec';
import type { DepositEvent } from '../payload';
import type { BenchSnapshots, BenchStore, BenchSystem } from '../system';
import { SystemUnavailableError } from '../system';
import { CairnStore, loadOpener, requireProvider, startRuntime } from './cairn';

/**
 * PostgreSQL systems, all on the one server of the run (run.ts starts a throwaway one, or
 * CAIRN_BENCH_PG_URL names one) with synchronous_commit on: each cell's data directory maps to a schema
 * of its own. Besides Cairn's provider, the two peers the workload table asks for: a naive node-postgres pool
 * doing one INSERT per append, and a hand-written batched writer (the appends queued while an INSERT is
 * in flight go out as the next multi-row INSERT), both with Cairn's default pool size.
 */
export const PG_POOL_SIZE = 4;

function serverUrl(): string {
  const url = process.env.CAIRN_BENCH_PG_URL;
  if (!url)
    throw new SystemUnavailableError('no PostgreSQL server (run.ts starts one; or set CAIRN_BENCH_PG_URL)');
  return url;
}

/** The schema of a cell's data directory: its base name, made an SQL identifier. */
function schemaOf(dir: string): string {
  return `b_${path
    .basename(dir)
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, '_')}`.slice(0, 63);
}

export const cairnPostgresSystem: BenchSystem = {
  id: 'cairn-postgres',
  label: 'cairn postgres',
  engine: 'postgres',
  durable: true,
  durability: `PostgresMessageJournal defaults (poolSize ${PG_POOL_SIZE}, group commit, one statement per batch); synchronous_commit on`,
  open: async (dir) => {
    const journal = await loadOpener('@cairn/postgres', 'PostgresMessageJournal');
    const snapshots = await loadOpener('@cairn/postgres', 'PostgresSnapshotStore');
    const options = { connectionString: serverUrl(), schema: schemaOf(dir) };
    const j = await journal(options);
    try {
      return new CairnStore(j as never, (await snapshots(options)) as never);
    } catch (error) {
      await (j as { close(): Promise<void> }).close();
      throw error;
    }
  },
  runtime: async (dir) => {
    await requireProvider('@cairn/postgres');
    const options = { provider: 'postgres', connectionString: serverUrl(), schema: schemaOf(dir) };
    return startRuntime({ journal: options, snapshots: options });
  },
};

/** The part of node-postgres used here. */
interface PgPool {
  query(text: string, params?: unknown[]): Promise<{ rows: unknown[][] }>;
  end(): Promise<void>;
}

async function pool(dir: string): Promise<{ pool: PgPool; schema: string }> {
  let pg: { Pool: new (config: Record<string, unknown>) => PgPool };
  try {
    pg = (await import('pg')) as unknown as typeof pg;
  } catch (error) {
    throw new SystemUnavailableError(`pg failed to import: ${(error as Error).message}`);
  }
  const Pool = pg.Pool ?? (pg as unknown as { default: typeof pg }).default.Pool;
  const p = new Pool({ connectionString: serverUrl(), max: PG_POOL_SIZE });
  const schema = schemaOf(dir);
  await p.query(
    `CREATE SCHEMA IF NOT EXISTS ${schema};
     CREATE TABLE IF NOT EXISTS ${schema}.events (pid text NOT NULL, seq bigint NOT NULL, payload bytea NOT NULL, PRIMARY KEY (pid, seq));
     CREATE TABLE IF NOT EXISTS ${schema}.snapshots (pid text PRIMARY KEY, seq bigint NOT NULL, state bytea NOT NULL)`,
  );
  return { pool: p, schema };
}

/** What both peers share: per-id numbering in memory (one writer per id), paged replay, snapshots. */
abstract class PgPeerStore implements BenchStore {
  readonly snapshots: BenchSnapshots;
  protected readonly assigned = new Map<string, number>();

  constructor(
    protected readonly pool: PgPool,
    protected readonly schema: string,
  ) {
    this.snapshots = {
      save: async (id, sequenceNr, state) => {
        await pool.query(
          `INSERT INTO ${schema}.snapshots (pid, seq, state) VALUES ($1, $2, $3)
           ON CONFLICT (pid) DO UPDATE SET seq = EXCLUDED.seq, state = EXCLUDED.state`,
          [id, sequenceNr, encodeValue(state)],
        );
      },
      load: async (id) => {
        const { rows } = await pool.query(
          { text: `SELECT seq, state FROM ${schema}.snapshots WHERE pid = $1`, rowMode: 'array' } as never,
          [id],
        );
        const row = rows[0];
        return row && { sequenceNr: Number(row[0]), state: decodeValue(row[1] as Buffer) };
      },
    };
  }

  protected async next(id: string, count: number): Promise<number> {
    let highest = this.assigned.get(id);
    if (highest === undefined) {
      const { rows } = await this.pool.query(
        { text: `SELECT max(seq) FROM ${this.schema}.events WHERE pid = $1`, rowMode: 'array' } as never,
        [id],
      );
      highest = Number(rows[0]?.[0] ?? 0);
    }
    this.assigned.set(id, highest + count);
    return highest + 1;
  }

  abstract append(id: string, event: DepositEvent): Promise<void>;

  async appendBatch(id: string, events: readonly DepositEvent[]): Promise<void> {
    const first = await this.next(id, events.length);
    await this.pool.query(
      `INSERT INTO ${this.schema}.events (pid, seq, payload)
       SELECT $1, s, p FROM unnest($2::int8[], $3::bytea[]) AS t(s, p)`,
      [id, events.map((_, k) => first + k), events.map((e) => encodeValue(e))],
    );
  }

  async replay(id: string, fromSequenceNr: number, onEvent: (event: DepositEvent) => void): Promise<number> {
    let from = fromSequenceNr;
    let read = 0;
    for (;;) {
      const { rows } = await this.pool.query(
        {
          text: `SELECT seq, payload FROM ${this.schema}.events WHERE pid = $1 AND seq >= $2 ORDER BY seq LIMIT 2000`,
          rowMode: 'array',
        } as never,
        [id, from],
      );
      for (const row of rows) onEvent(decodeValue(row[1] as Buffer) as DepositEvent);
      read += rows.length;
      if (rows.length < 2000) return read;
      from = Number(rows[rows.length - 1]![0]) + 1;
    }
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}

/** One INSERT per append, as an application would write it without thinking about batching. */
class NaivePgStore extends PgPeerStore {
  async append(id: string, event: DepositEvent): Promise<void> {
    const seq = await this.next(id, 1);
    await this.pool.query(`INSERT INTO ${this.schema}.events (pid, seq, payload) VALUES ($1, $2, $3)`, [
      id,
      seq,
      encodeValue(event),
    ]);
  }
}

/** Appends queued while an INSERT is in flight go out together as the next multi-row INSERT (one at a time). */
class BatchedPgStore extends PgPeerStore {
  private queue: {
    id: string;
    seq: number;
    payload: Buffer;
    done: () => void;
    fail: (e: unknown) => void;
  }[] = [];
  private flushing = false;

  async append(id: string, event: DepositEvent): Promise<void> {
    const seq = await this.next(id, 1);
    await new Promise<void>((done, fail) => {
      this.queue.push({ id, seq, payload: encodeValue(event), done, fail });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, 1000);
      try {
        await this.pool.query(
          `INSERT INTO ${this.schema}.events (pid, seq, payload)
           SELECT * FROM unnest($1::text[], $2::int8[], $3::bytea[])`,
          [batch.map((b) => b.id), batch.map((b) => b.seq), batch.map((b) => b.payload)],
        );
        for (const b of batch) b.done();
      } catch (error) {
        for (const b of batch) b.fail(error);
      }
    }
    this.flushing = false;
  }
}

export const pgNaiveSystem: BenchSystem = {
  id: 'pg-naive',
  label: 'pg pool, INSERT per append',
  engine: 'postgres',
  durable: true,
  durability: `node-postgres pool of ${PG_POOL_SIZE}, one INSERT (one commit) per append; synchronous_commit on`,
  open: async (dir) => {
    const { pool: p, schema } = await pool(dir);
    return new NaivePgStore(p, schema);
  },
};

export const pgBatchedSystem: BenchSystem = {
  id: 'pg-batched',
  label: 'pg batched multi-row INSERT',
  engine: 'postgres',
  durable: true,
  durability: `node-postgres pool of ${PG_POOL_SIZE}; appends queued during an INSERT go out as the next multi-row INSERT; synchronous_commit on`,
  open: async (dir) => {
    const { pool: p, schema } = await pool(dir);
    return new BatchedPgStore(p, schema);
  },
};
