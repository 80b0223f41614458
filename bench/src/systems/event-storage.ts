import { createRequire } from 'node:module';
import type { DepositEvent } from '../payload';
import type { BenchStore, BenchSystem, OpenOptions } from '../system';
import { SystemUnavailableError } from '../system';

/**
 * event-storage (node-event-storage): one write stream (partition file plus index file) per id, its own
 * JSON serialization. Made as durable as it allows: `syncOnFlush: true` fsyncs a partition on each
 * write-buffer flush, and a commit's callback runs after that flush. Its stream indexes flush on a
 * 100 ms timer (also fsynced, but after the callback), so a crash can still lose the index tail, which
 * it rebuilds from the partition only in part. It has no snapshot store (W5 does not apply).
 */
export const eventStorageSystem: BenchSystem = {
  id: 'event-storage',
  label: 'event-storage',
  engine: 'event-storage',
  durable: true,
  durability:
    'syncOnFlush: true (partition fsynced before the commit callback; indexes flush on a 100 ms timer)',
  open: (dir, options) => EventStorageStore.open(dir, options),
};

/** The part of event-storage's API used here (it ships no types). */
interface EventStoreInstance {
  once(event: 'ready', listener: () => void): void;
  commit(stream: string, events: unknown[], callback: () => void): void;
  getEventStream(stream: string, minRevision?: number, maxRevision?: number): Iterable<unknown> | false;
  close(): void;
}

interface EventStorageModule {
  EventStore: new (name: string, config: Record<string, unknown>) => EventStoreInstance;
}

function loadEventStorage(): EventStorageModule {
  try {
    return createRequire(__filename)('event-storage') as EventStorageModule;
  } catch (error) {
    throw new SystemUnavailableError(`event-storage failed to load: ${(error as Error).message}`);
  }
}

class EventStorageStore implements BenchStore {
  private constructor(private readonly store: EventStoreInstance) {}

  static async open(dir: string, options: OpenOptions): Promise<EventStorageStore> {
    const { EventStore } = loadEventStorage();
    const store = new EventStore('bench', {
      storageDirectory: dir,
      storageConfig: { syncOnFlush: options.durable },
    });
    await new Promise<void>((resolve) => store.once('ready', resolve));
    return new EventStorageStore(store);
  }

  append(id: string, event: DepositEvent): Promise<void> {
    return new Promise((resolve) => this.store.commit(id, [event], resolve));
  }

  appendBatch(id: string, events: readonly DepositEvent[]): Promise<void> {
    return new Promise((resolve) => this.store.commit(id, [...events], resolve));
  }

  async replay(id: string, fromSequenceNr: number, onEvent: (event: DepositEvent) => void): Promise<number> {
    // Stream revisions count from 0.
    const stream = this.store.getEventStream(id, fromSequenceNr - 1);
    if (stream === false) return 0;
    let read = 0;
    for (const event of stream) {
      onEvent(event as DepositEvent);
      read++;
    }
    return read;
  }

  async close(): Promise<void> {
    this.store.close();
  }
}
