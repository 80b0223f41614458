import type { Database, RootDatabase } from 'lmdb';
import type { DepositEvent } from '../payload';
import type { BenchQuery, BenchSnapshots, BenchStore, BenchSystem, OpenOptions } from '../system';
import { NotApplicableError, SystemUnavailableError } from '../system';

/**
 * raw-lmdb: lmdb-js used directly, the ceiling for the LMDB backend. Events under the key [id, sequenceNr]
 * in one database, values in lmdb-js's own msgpack encoding. lmdb-js batches concurrent puts into one
 * transaction by itself; with overlappingSync off a put resolves only after its commit is synced.
 */
export const rawLmdbSystem: BenchSystem = {
  id: 'raw-lmdb',
  label: 'raw-lmdb',
  engine: 'lmdb',
  durable: true,
  durability: 'overlappingSync: false (a put resolves after its transaction commit is synced)',
  open: (dir, options) => RawLmdbStore.open(dir, options, false),
};

/**
 * raw-lmdb-indexed: raw-lmdb plus the indexes Cairn's LMDB journal keeps for its read side, written in the
 * same transaction as the event: a global position per event (a positions database, position -> [id,
 * sequenceNr], the counter kept in memory and found again on open) and one [tag, position] entry per tag.
 * The peer for the read-side workloads (W1T, W8) and for W1/W2 "with the same indexes". No live
 * notification (W7 does not apply).
 */
export const rawLmdbIndexedSystem: BenchSystem = {
  id: 'raw-lmdb-indexed',
  label: 'raw-lmdb-indexed',
  engine: 'lmdb',
  durable: true,
  durability: rawLmdbSystem.durability,
  globalOrder: true,
  open: (dir, options) => RawLmdbStore.open(dir, options, true),
};

type EventKey = [string, number];

const MAX_SEQ = Number.MAX_SAFE_INTEGER;

class RawLmdbStore implements BenchStore {
  readonly snapshots: BenchSnapshots;
  readonly query: BenchQuery | undefined;
  private readonly assigned = new Map<string, number>();
  private position = 0;

  private constructor(
    private readonly root: RootDatabase,
    private readonly events: Database<DepositEvent, EventKey>,
    snapshots: Database<{ sequenceNr: number; state: unknown }, string>,
    private readonly indexes?: {
      positions: Database<EventKey, number>;
      tags: Database<EventKey, [string, number]>;
    },
  ) {
    if (indexes) {
      for (const position of indexes.positions.getKeys({ reverse: true, limit: 1 })) this.position = position;
    }
    this.query = indexes && {
      appendTagged: (id, event, tags) => this.append(id, event, tags),
      catchUp: async (onEvent) => {
        let read = 0;
        for (const { value: key } of indexes.positions.getRange({})) {
          const event = events.get(key);
          if (event === undefined)
            throw new Error(`positions index names ${key.join('#')}, which is missing`);
          onEvent(event);
          read++;
        }
        return read;
      },
      follow: async () => {
        throw new NotApplicableError('raw lmdb-js has no live notification of commits');
      },
    };
    this.snapshots = {
      save: async (id, sequenceNr, state) => {
        await snapshots.put(id, { sequenceNr, state });
      },
      load: async (id) => snapshots.get(id),
    };
  }

  static async open(dir: string, options: OpenOptions, indexed: boolean): Promise<RawLmdbStore> {
    let lmdb: typeof import('lmdb');
    try {
      lmdb = await import('lmdb');
    } catch (error) {
      throw new SystemUnavailableError(`lmdb failed to load: ${(error as Error).message}`);
    }
    const root = lmdb.open({ path: dir, maxDbs: 4, overlappingSync: false, noSync: !options.durable });
    const events = root.openDB<DepositEvent, EventKey>({ name: 'events' });
    const snapshots = root.openDB<{ sequenceNr: number; state: unknown }, string>({ name: 'snapshots' });
    const indexes = indexed
      ? {
          positions: root.openDB<EventKey, number>({ name: 'positions' }),
          tags: root.openDB<EventKey, [string, number]>({ name: 'tags' }),
        }
      : undefined;
    return new RawLmdbStore(root, events, snapshots, indexes);
  }

  /**
   * One event; with indexes, its position and tag entries too. lmdb-js commits the puts issued in one event
   * turn in one transaction, so the event and its index entries are atomic without a transaction callback.
   */
  async append(id: string, event: DepositEvent, tags: readonly string[] = []): Promise<void> {
    await this.put([id, this.next(id, 1)], event, tags);
  }

  async appendBatch(id: string, events: readonly DepositEvent[]): Promise<void> {
    const first = this.next(id, events.length);
    await this.events.transaction(() => {
      events.forEach((event, k) => {
        void this.put([id, first + k], event, []);
      });
    });
  }

  private put(key: EventKey, event: DepositEvent, tags: readonly string[]): Promise<boolean> {
    const written = this.events.put(key, event);
    if (!this.indexes) return written;
    const position = ++this.position;
    void this.indexes.positions.put(position, key);
    for (const tag of tags) void this.indexes.tags.put([tag, position], key);
    return written;
  }

  async replay(id: string, fromSequenceNr: number, onEvent: (event: DepositEvent) => void): Promise<number> {
    let read = 0;
    for (const { value } of this.events.getRange({ start: [id, fromSequenceNr], end: [id, MAX_SEQ] })) {
      onEvent(value);
      read++;
    }
    return read;
  }

  close(): Promise<void> {
    return this.root.close();
  }

  /** Reserves `count` sequence numbers for `id`; the first use after a reopen finds the highest stored. */
  private next(id: string, count: number): number {
    let highest = this.assigned.get(id);
    if (highest === undefined) {
      highest = 0;
      for (const key of this.events.getKeys({
        start: [id, MAX_SEQ],
        end: [id, 0],
        reverse: true,
        limit: 1,
      })) {
        highest = key[1];
      }
    }
    this.assigned.set(id, highest + count);
    return highest + 1;
  }
}
