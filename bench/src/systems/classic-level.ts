import { decodeValue, encodeValue } from '../event-codec';
import type { DepositEvent } from '../payload';
import type { BenchSnapshots, BenchStore, BenchSystem, OpenOptions } from '../system';
import { SystemUnavailableError } from '../system';

/**
 * classic-level: LevelDB with `sync: true` on every write (the log is fsynced before the write resolves;
 * LevelDB itself groups concurrent writers into one log write). Events under
 * "e\0<id>\0<16-digit sequenceNr>", msgpack values.
 */
export const classicLevelSystem: BenchSystem = {
  id: 'classic-level',
  label: 'classic-level',
  engine: 'leveldb',
  durable: true,
  durability: 'sync: true on every put and batch',
  open: (dir, options) => ClassicLevelStore.open(dir, options),
};

type Level = import('classic-level').ClassicLevel<string, Buffer>;

const PAGE = 1000;

function eventKey(id: string, sequenceNr: number): string {
  return `e\0${id}\0${String(sequenceNr).padStart(16, '0')}`;
}

class ClassicLevelStore implements BenchStore {
  readonly snapshots: BenchSnapshots;
  private readonly assigned = new Map<string, number>();
  private readonly writeOptions: { sync: boolean };

  private constructor(
    private readonly db: Level,
    durable: boolean,
  ) {
    this.writeOptions = { sync: durable };
    this.snapshots = {
      save: (id, sequenceNr, state) =>
        db.put(`s\0${id}`, encodeValue({ sequenceNr, state }), this.writeOptions),
      load: async (id) => {
        const bytes = await db.get(`s\0${id}`);
        return bytes && (decodeValue(bytes) as { sequenceNr: number; state: unknown });
      },
    };
  }

  static async open(dir: string, options: OpenOptions): Promise<ClassicLevelStore> {
    let ClassicLevel: typeof import('classic-level').ClassicLevel;
    try {
      ({ ClassicLevel } = await import('classic-level'));
    } catch (error) {
      throw new SystemUnavailableError(`classic-level failed to load: ${(error as Error).message}`);
    }
    const db = new ClassicLevel<string, Buffer>(dir, { keyEncoding: 'utf8', valueEncoding: 'buffer' });
    await db.open();
    return new ClassicLevelStore(db, options.durable);
  }

  async append(id: string, event: DepositEvent): Promise<void> {
    const seq = await this.next(id, 1);
    await this.db.put(eventKey(id, seq), encodeValue(event), this.writeOptions);
  }

  async appendBatch(id: string, events: readonly DepositEvent[]): Promise<void> {
    const first = await this.next(id, events.length);
    await this.db.batch(
      events.map((event, k) => ({
        type: 'put' as const,
        key: eventKey(id, first + k),
        value: encodeValue(event),
      })),
      this.writeOptions,
    );
  }

  async replay(id: string, fromSequenceNr: number, onEvent: (event: DepositEvent) => void): Promise<number> {
    const iterator = this.db.values({ gte: eventKey(id, fromSequenceNr), lt: `e\0${id}\x01` });
    let read = 0;
    try {
      for (;;) {
        const page = await iterator.nextv(PAGE);
        if (page.length === 0) break;
        for (const bytes of page) onEvent(decodeValue(bytes) as DepositEvent);
        read += page.length;
      }
    } finally {
      await iterator.close();
    }
    return read;
  }

  close(): Promise<void> {
    return this.db.close();
  }

  /** Reserves `count` sequence numbers; the workloads never append to one id concurrently. */
  private async next(id: string, count: number): Promise<number> {
    let highest = this.assigned.get(id);
    if (highest === undefined) {
      const last = await this.db
        .keys({ gte: `e\0${id}\0`, lt: `e\0${id}\x01`, reverse: true, limit: 1 })
        .all();
      highest = last[0] ? Number(last[0].slice(-16)) : 0;
    }
    this.assigned.set(id, highest + count);
    return highest + 1;
  }
}
