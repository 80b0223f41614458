import { MemoryMessageJournal, type MemoryMessageJournalOptions } from './memory-journal';
import { MemorySnapshotStore, type MemorySnapshotStoreOptions } from './memory-snapshot-store';
import { checkOptionTypes, JOURNAL_OPTION_TYPES, SNAPSHOT_OPTION_TYPES } from './provider-options';
import type { PersistenceProvider } from './spi';

const shared = { store: 'object', faults: 'object' } as const;

/** The "memory" provider: in-memory journal and snapshot store, fresh for every call unless given a `store`. */
export const memoryProvider: PersistenceProvider = {
  name: 'memory',
  createJournal: (options) => MemoryMessageJournal.open(options as MemoryMessageJournalOptions),
  createSnapshotStore: (options) => MemorySnapshotStore.open(options as MemorySnapshotStoreOptions),
  createOffsetStore: async (journal) => {
    // Offsets live in the journal's MemoryJournalStore; the journal is always this provider's own.
    if (!(journal instanceof MemoryMessageJournal)) {
      throw new TypeError('the memory provider keeps offsets only for a journal it opened');
    }
    return journal.offsetStore();
  },
  validateOptions: (kind, options) =>
    checkOptionTypes(options, {
      ...(kind === 'journal' ? JOURNAL_OPTION_TYPES : SNAPSHOT_OPTION_TYPES),
      ...shared,
    }),
};
