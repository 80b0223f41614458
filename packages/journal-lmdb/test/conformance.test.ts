import { LmdbMessageJournal, LmdbSnapshotStore } from '@cairn/journal-lmdb';
import { journalConformance, snapshotConformance } from '@cairn/testkit';

journalConformance({
  name: 'lmdb (durable)',
  create: ({ dir }) => LmdbMessageJournal.open({ path: dir }),
});

journalConformance({
  name: 'lmdb (noSync, batches of 3, no delay)',
  create: ({ dir }) =>
    LmdbMessageJournal.open({ path: dir, noSync: true, maxBatchSize: 3, maxBatchDelayMs: 0 }),
  modelRuns: 10,
});

snapshotConformance({
  name: 'lmdb',
  create: ({ dir }) => LmdbSnapshotStore.open({ path: dir }),
});
