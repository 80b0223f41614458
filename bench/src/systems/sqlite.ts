import { createRequire } from 'node:module';
import * as path from 'node:path';
import { decodeValue, encodeValue } from '../event-codec';
import type { DepositEvent } from '../payload';
import type { BenchSnapshots, BenchStore, BenchSystem } from '../system';
import { SystemUnavailableError } from '../system';

/**
 * better-sqlite3 in WAL mode: synchronous=FULL syncs the WAL on every commit (durable), NORMAL only at
 * checkpoints (a crash can lose the last commits, never corrupt). One row per event, key (id, seq).
 * better-sqlite3 is synchronous: a commit blocks the event loop, so 100 "concurrent" writers run one at
 * a time; that is how it behaves in an application too.
 */
export const sqliteFullSystem: BenchSystem = {
  id: 'sqlite-full',
  label: 'better-sqlite3 FULL',
  engine: 'sqlite',
  durable: true,
  durability: 'WAL, synchronous=FULL (the WAL is synced at every commit)',
  open: (dir, options) => SqliteStore.open(dir, options.durable ? 'FULL' : 'OFF'),
};

export const sqliteNormalSystem: BenchSystem = {
  id: 'sqlite-normal',
  label: 'better-sqlite3 NORMAL',
  engine: 'sqlite',
  durable: false,
  durability: 'WAL, synchronous=NORMAL (not durable: synced only at checkpoints)',
  open: (dir, options) => SqliteStore.open(dir, options.durable ? 'NORMAL' : 'OFF'),
};

/** The part of better-sqlite3's API used here (it ships no types and @types is not installed). */
interface SqliteDatabase {
  pragma(source: string): unknown;
  exec(source: string): void;
  prepare(source: string): SqliteStatement;
  transaction<A extends unknown[]>(fn: (...args: A) => void): (...args: A) => void;
  close(): void;
}

interface SqliteStatement {
  run(...params: unknown[]): unknown;
  get(...params: unknown[]): unknown;
  iterate(...params: unknown[]): IterableIterator<unknown>;
  raw(raw?: boolean): SqliteStatement;
}

type SqliteConstructor = new (file: string) => SqliteDatabase;

function loadSqlite(): SqliteConstructor {
  try {
    return createRequire(__filename)('better-sqlite3') as SqliteConstructor;
  } catch (error) {
    throw new SystemUnavailableError(`better-sqlite3 failed to load: ${(error as Error).message}`);
  }
}

class SqliteStore implements BenchStore {
  readonly snapshots: BenchSnapshots;
  private readonly insert: SqliteStatement;
  private readonly insertMany: (id: string, first: number, events: readonly DepositEvent[]) => void;
  private readonly highest: SqliteStatement;
  private readonly select: SqliteStatement;
  private readonly assigned = new Map<string, number>();

  private constructor(private readonly db: SqliteDatabase) {
    db.exec(
      'CREATE TABLE IF NOT EXISTS events (pid TEXT NOT NULL, seq INTEGER NOT NULL, payload BLOB NOT NULL, ' +
        'PRIMARY KEY (pid, seq)) WITHOUT ROWID;' +
        'CREATE TABLE IF NOT EXISTS snapshots (pid TEXT PRIMARY KEY, seq INTEGER NOT NULL, state BLOB NOT NULL)',
    );
    this.insert = db.prepare('INSERT INTO events (pid, seq, payload) VALUES (?, ?, ?)');
    this.insertMany = db.transaction((id: string, first: number, events: readonly DepositEvent[]) => {
      for (let k = 0; k < events.length; k++) this.insert.run(id, first + k, encodeValue(events[k]));
    });
    this.highest = db.prepare('SELECT MAX(seq) FROM events WHERE pid = ?').raw(true);
    this.select = db.prepare('SELECT payload FROM events WHERE pid = ? AND seq >= ? ORDER BY seq').raw(true);
    const saveSnapshot = db.prepare('INSERT OR REPLACE INTO snapshots (pid, seq, state) VALUES (?, ?, ?)');
    const loadSnapshot = db.prepare('SELECT seq, state FROM snapshots WHERE pid = ?').raw(true);
    this.snapshots = {
      save: async (id: string, sequenceNr: number, state: unknown) => {
        saveSnapshot.run(id, sequenceNr, encodeValue(state));
      },
      load: async (id: string) => {
        const row = loadSnapshot.get(id) as [number, Buffer] | undefined;
        return row && { sequenceNr: row[0], state: decodeValue(row[1]) };
      },
    };
  }

  static async open(dir: string, synchronous: 'FULL' | 'NORMAL' | 'OFF'): Promise<SqliteStore> {
    const Database = loadSqlite();
    const db = new Database(path.join(dir, 'events.sqlite'));
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${synchronous}`);
    return new SqliteStore(db);
  }

  async append(id: string, event: DepositEvent): Promise<void> {
    this.insert.run(id, this.next(id, 1), encodeValue(event));
  }

  async appendBatch(id: string, events: readonly DepositEvent[]): Promise<void> {
    this.insertMany(id, this.next(id, events.length), events);
  }

  async replay(id: string, fromSequenceNr: number, onEvent: (event: DepositEvent) => void): Promise<number> {
    let read = 0;
    for (const row of this.select.iterate(id, fromSequenceNr)) {
      onEvent(decodeValue((row as [Buffer])[0]) as DepositEvent);
      read++;
    }
    return read;
  }

  async close(): Promise<void> {
    this.db.close();
  }

  private next(id: string, count: number): number {
    let highest = this.assigned.get(id);
    if (highest === undefined) {
      highest = ((this.highest.get(id) as [number | null])[0] ?? 0) as number;
    }
    this.assigned.set(id, highest + count);
    return highest + 1;
  }
}
