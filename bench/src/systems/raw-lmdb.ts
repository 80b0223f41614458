import type { Database, RootDatabase } from 'lmdb';
import type { DepositEvent } from '../payload';
import type { BenchSnapshots, BenchStore, BenchSystem, OpenOptions } from '../system';
import { SystemUnavailableError } from '../system';

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
  open: (dir, options) => RawLmdbStore.open(dir, options),
};

const MAX_SEQ = Number.MAX_SAFE_INTEGER;

class RawLmdbStore implements BenchStore {
  readonly snapshots: BenchSnapshots;
  private readonly assigned = new Map<string, number>();

  private constructor(
    private readonly root: RootDatabase,
    private readonly events: Database<DepositEvent, [string, number]>,
    snapshots: Database<{ sequenceNr: number; state: unknown }, string>,
  ) {
    this.snapshots = {
      save: async (id, sequenceNr, state) => {
        await snapshots.put(id, { sequenceNr, state });
      },
      load: async (id) => snapshots.get(id),
    };
  }

  static async open(dir: string, options: OpenOptions): Promise<RawLmdbStore> {
    let lmdb: typeof import('lmdb');
    try {
      lmdb = await import('lmdb');
    } catch (error) {
      throw new SystemUnavailableError(`lmdb failed to load: ${(error as Error).message}`);
    }
    const root = lmdb.open({ path: dir, maxDbs: 4, overlappingSync: false, noSync: !options.durable });
    const events = root.openDB<DepositEvent, [string, number]>({ name: 'events' });
    const snapshots = root.openDB<{ sequenceNr: number; state: unknown }, string>({ name: 'snapshots' });
    return new RawLmdbStore(root, events, snapshots);
  }

  async append(id: string, event: DepositEvent): Promise<void> {
    await this.events.put([id, this.next(id, 1)], event);
  }

  async appendBatch(id: string, events: readonly DepositEvent[]): Promise<void> {
    const first = this.next(id, events.length);
    await this.events.transaction(() => {
      events.forEach((event, k) => {
        void this.events.put([id, first + k], event);
      });
    });
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
