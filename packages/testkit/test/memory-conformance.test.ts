import {
  MemoryJournalStore,
  MemoryMessageJournal,
  MemorySnapshotData,
  MemorySnapshotStore,
} from '@cairn/actor-core';
import { journalConformance, snapshotConformance } from '@cairn/testkit';

// The memory provider keeps data per store object; one per directory makes "reopen" find it again.
const journalStores = new Map<string, MemoryJournalStore>();
const snapshotStores = new Map<string, MemorySnapshotData>();

journalConformance({
  name: 'memory',
  create: async ({ dir }) => {
    const store = journalStores.get(dir) ?? new MemoryJournalStore();
    journalStores.set(dir, store);
    return MemoryMessageJournal.open({ store });
  },
});

snapshotConformance({
  name: 'memory',
  create: async ({ dir }) => {
    const store = snapshotStores.get(dir) ?? new MemorySnapshotData();
    snapshotStores.set(dir, store);
    return MemorySnapshotStore.open({ store });
  },
});
