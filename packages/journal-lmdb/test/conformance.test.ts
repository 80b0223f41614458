import { LmdbMessageJournal, LmdbSnapshotStore } from '@cairn/journal-lmdb';
import { journalConformance, snapshotConformance } from '@cairn/testkit';

journalConformance({
  name: 'lmdb (durable)',
  capabilities: { persistent: true, query: true },
  create: ({ dir }) => LmdbMessageJournal.open({ path: dir }),
  imports: true,
});

journalConformance({
  name: 'lmdb (noSync, batches of 3, no delay)',
  capabilities: { persistent: true, query: true },
  create: ({ dir }) =>
    LmdbMessageJournal.open({ path: dir, noSync: true, maxBatchSize: 3, maxBatchDelayMs: 0 }),
  modelRuns: 10,
  imports: true,
});

snapshotConformance({
  name: 'lmdb',
  create: ({ dir }) => LmdbSnapshotStore.open({ path: dir }),
});
