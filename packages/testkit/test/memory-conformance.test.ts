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
  capabilities: { persistent: false },
  create: async ({ dir }) => {
    let store = journalStores.get(dir);
    if (!store) journalStores.set(dir, (store = new MemoryJournalStore()));
    return MemoryMessageJournal.open({ store });
  },
});

snapshotConformance({
  name: 'memory',
  capabilities: { persistent: false },
  create: async ({ dir }) => {
    let store = snapshotStores.get(dir);
    if (!store) snapshotStores.set(dir, (store = new MemorySnapshotData()));
    return MemorySnapshotStore.open({ store });
  },
});
