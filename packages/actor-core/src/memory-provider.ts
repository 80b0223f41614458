import {
  MEMORY_JOURNAL_OPTION_TYPES,
  MemoryMessageJournal,
  type MemoryMessageJournalOptions,
} from './memory-journal';
import {
  MEMORY_SNAPSHOT_OPTION_TYPES,
  MemorySnapshotStore,
  type MemorySnapshotStoreOptions,
} from './memory-snapshot-store';
import { checkOptionTypes } from './provider-options';
import type { PersistenceProvider } from './spi';

/** The "memory" provider: in-memory journal and snapshot store, fresh for every call unless given a `store`. */
export const memoryProvider: PersistenceProvider = {
  name: 'memory',
  requiresPath: false,
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
    checkOptionTypes(
      options,
      kind === 'journal' ? MEMORY_JOURNAL_OPTION_TYPES : MEMORY_SNAPSHOT_OPTION_TYPES,
    ),
};
