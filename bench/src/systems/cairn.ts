import * as path from 'node:path';
import type { EventQuery, MessageJournal, SnapshotStore } from '@cairn/actor-core';
import type { DepositEvent } from '../payload';
import type {
  BenchQuery,
  BenchSnapshots,
  BenchStore,
  BenchSystem,
  OpenOptions,
  RuntimeModule,
  RuntimeTarget,
} from '../system';
import { SystemUnavailableError } from '../system';

/**
 * Cairn's providers, driven through their public API only (the public contract "Backends (direct use)" and
 * "Event-sourced actors"). Every package is loaded by dynamic import and every export checked, so a
 * backend or runtime that has not landed yet makes its system "unavailable" instead of breaking the run.
 */

type Opener = (options: Record<string, unknown>) => Promise<unknown>;

/** `exportName.open` of `specifier`, or SystemUnavailableError saying what is missing. */
export async function loadOpener(specifier: string, exportName: string): Promise<Opener> {
  let module: Record<string, unknown>;
  try {
    module = (await import(specifier)) as Record<string, unknown>;
  } catch (error) {
    throw new SystemUnavailableError(`${specifier} failed to import: ${firstLine(error)}`);
  }
  const exported = module[exportName] as { open?: unknown } | undefined;
  if (typeof exported?.open !== 'function') {
    throw new SystemUnavailableError(`${specifier} has no ${exportName}.open (not landed yet?)`);
  }
  const open = exported.open as Opener;
  return (options) => open.call(exported, options);
}

/**
 * Checks that `specifier` exports the `provider` the runtime's config loader will look for: without this,
 * a provider that has not landed yet surfaces as a ConfigError from ActorSystem.create, not "unavailable".
 */
export async function requireProvider(specifier: string): Promise<void> {
  let module: Record<string, unknown>;
  try {
    module = (await import(specifier)) as Record<string, unknown>;
  } catch (error) {
    throw new SystemUnavailableError(`${specifier} failed to import: ${firstLine(error)}`);
  }
  const provider = module.provider as Record<string, unknown> | undefined;
  if (typeof provider?.createJournal !== 'function' || typeof provider.createSnapshotStore !== 'function') {
    throw new SystemUnavailableError(`${specifier} exports no provider (the runtime cannot load it)`);
  }
}

async function loadRuntime(): Promise<RuntimeModule> {
  let module: Record<string, unknown>;
  try {
    module = (await import('@cairn/actor-core')) as Record<string, unknown>;
  } catch (error) {
    throw new SystemUnavailableError(`@cairn/actor-core failed to import: ${firstLine(error)}`);
  }
  const missing = [
    ['ActorSystem', 'create'],
    ['EventSourcedBehavior', 'create'],
    ['Effect', 'persist'],
  ].filter(
    ([name, fn]) =>
      typeof (module[name as string] as Record<string, unknown> | undefined)?.[fn as string] !== 'function',
  );
  if (missing.length > 0) {
    throw new SystemUnavailableError(
      `@cairn/actor-core has no ${missing.map(([n, f]) => `${n}.${f}`).join(', ')} (runtime not landed yet?)`,
    );
  }
  return module as unknown as RuntimeModule;
}

function firstLine(error: unknown): string {
  return String((error as Error)?.message ?? error).split('\n')[0] ?? '';
}

/** True when the journal declares (in its capabilities) that it implements EventQuery. */
function queryable(
  journal: MessageJournal<DepositEvent>,
): journal is MessageJournal<DepositEvent> & EventQuery<DepositEvent> {
  return (journal as { capabilities?: { query?: boolean } }).capabilities?.query === true;
}

function queryOf(journal: MessageJournal<DepositEvent> & EventQuery<DepositEvent>): BenchQuery {
  return {
    appendTagged: async (id, event, tags) => {
      await journal.append(id, event, { tags });
    },
    catchUp: async (onEvent) => {
      let read = 0;
      for await (const e of journal.allEvents()) {
        onEvent(e.message);
        read++;
      }
      return read;
    },
    follow: async (onEvent) => {
      const controller = new AbortController();
      const head = await journal.headOffset();
      const reading = (async () => {
        try {
          for await (const e of journal.allEvents({
            ...(head === undefined ? {} : { after: head }),
            live: true,
            signal: controller.signal,
          })) {
            onEvent(e.message, e.persistenceId, e.sequenceNr);
          }
        } catch (error) {
          if (!controller.signal.aborted) throw error;
        }
      })();
      return {
        stop: async () => {
          controller.abort();
          await reading;
        },
      };
    },
  };
}

export class CairnStore implements BenchStore {
  readonly snapshots: BenchSnapshots;
  readonly query: BenchQuery | undefined;

  constructor(
    private readonly journal: MessageJournal<DepositEvent>,
    private readonly snapshotStore: SnapshotStore<unknown>,
  ) {
    this.query = queryable(journal) ? queryOf(journal) : undefined;
    this.snapshots = {
      save: (id, sequenceNr, state) => snapshotStore.save(id, sequenceNr, state),
      load: async (id) => {
        const entry = await snapshotStore.loadLatest(id);
        return entry && { sequenceNr: entry.sequenceNr, state: entry.state };
      },
    };
  }

  async append(id: string, event: DepositEvent): Promise<void> {
    await this.journal.append(id, event);
  }

  async appendBatch(id: string, events: readonly DepositEvent[]): Promise<void> {
    await this.journal.appendBatch(id, events);
  }

  async replay(id: string, fromSequenceNr: number, onEvent: (event: DepositEvent) => void): Promise<number> {
    let read = 0;
    for await (const entry of this.journal.readFrom(id, fromSequenceNr)) {
      onEvent(entry.message);
      read++;
    }
    return read;
  }

  async close(): Promise<void> {
    try {
      await this.journal.close();
    } finally {
      await this.snapshotStore.close();
    }
  }
}

/** Opens journal and snapshot store, closing the journal again if the snapshot store fails to open. */
async function openPair(
  openJournal: () => Promise<unknown>,
  openSnapshots: () => Promise<unknown>,
): Promise<CairnStore> {
  const journal = (await openJournal()) as MessageJournal<DepositEvent>;
  try {
    return new CairnStore(journal, (await openSnapshots()) as SnapshotStore<unknown>);
  } catch (error) {
    await journal.close();
    throw error;
  }
}

export async function startRuntime(persistence: unknown): Promise<RuntimeTarget> {
  const module = await loadRuntime();
  return { module, system: await module.ActorSystem.create({ persistence }) };
}

/**
 * In-memory data outlives a journal only through its store objects; keyed by the data directory so
 * that "reopening the same dir" (W3, W4) finds the events written before, within this process.
 */
const memoryData = new Map<string, { journal: unknown; snapshots: unknown }>();

async function memoryStores(dir: string): Promise<{ journal: unknown; snapshots: unknown }> {
  let data = memoryData.get(dir);
  if (!data) {
    const module = (await import('@cairn/actor-core')) as Record<string, unknown>;
    const JournalStore = module.MemoryJournalStore as (new () => unknown) | undefined;
    const SnapshotData = module.MemorySnapshotData as (new () => unknown) | undefined;
    if (!JournalStore || !SnapshotData) {
      throw new SystemUnavailableError('@cairn/actor-core has no MemoryJournalStore / MemorySnapshotData');
    }
    data = { journal: new JournalStore(), snapshots: new SnapshotData() };
    memoryData.set(dir, data);
  }
  return data;
}

export const cairnMemorySystem: BenchSystem = {
  id: 'cairn-memory',
  label: 'cairn memory',
  engine: 'memory',
  durable: false,
  durability: 'none (in memory; the floor of the journal machinery itself)',
  open: async (dir) => {
    const journal = await loadOpener('@cairn/actor-core', 'MemoryMessageJournal');
    const snapshots = await loadOpener('@cairn/actor-core', 'MemorySnapshotStore');
    const data = await memoryStores(dir);
    return openPair(
      () => journal({ store: data.journal }),
      () => snapshots({ store: data.snapshots }),
    );
  },
  runtime: async (dir) => {
    const data = await memoryStores(dir);
    return startRuntime({
      journal: { provider: 'memory', store: data.journal },
      snapshots: { provider: 'memory', store: data.snapshots },
    });
  },
};

export const cairnFileSystem: BenchSystem = {
  id: 'cairn-file',
  label: 'cairn file',
  engine: 'fs',
  durable: true,
  durability: 'FileMessageJournal defaults (fsync: true, group commit); FileSnapshotStore fsync: true',
  open: async (dir, options: OpenOptions) => {
    const journal = await loadOpener('@cairn/journal-file', 'FileMessageJournal');
    const snapshots = await loadOpener('@cairn/snapshot', 'FileSnapshotStore');
    // fsync: false only while building a workload's starting data; every measured open uses the default.
    const sync = options.durable ? {} : { fsync: false };
    return openPair(
      () => journal({ path: path.join(dir, 'journal'), ...sync }),
      () => snapshots({ path: path.join(dir, 'snapshots'), ...sync }),
    );
  },
  runtime: async (dir) => {
    await requireProvider('@cairn/journal-file');
    return startRuntime({
      journal: { provider: 'file', path: path.join(dir, 'journal') },
      snapshots: { provider: 'file', path: path.join(dir, 'snapshots') },
    });
  },
};

export const cairnLmdbSystem: BenchSystem = {
  id: 'cairn-lmdb',
  label: 'cairn lmdb',
  engine: 'lmdb',
  durable: true,
  durability: 'LmdbMessageJournal / LmdbSnapshotStore defaults (durable commits, group commit)',
  open: async (dir) => {
    const journal = await loadOpener('@cairn/journal-lmdb', 'LmdbMessageJournal');
    const snapshots = await loadOpener('@cairn/journal-lmdb', 'LmdbSnapshotStore');
    return openPair(
      () => journal({ path: path.join(dir, 'journal') }),
      () => snapshots({ path: path.join(dir, 'snapshots') }),
    );
  },
  runtime: async (dir) => {
    await requireProvider('@cairn/journal-lmdb');
    return startRuntime({
      journal: { provider: 'lmdb', path: path.join(dir, 'journal') },
      snapshots: { provider: 'lmdb', path: path.join(dir, 'snapshots') },
    });
  },
};
