import { FileSnapshotStore } from '@cairn/snapshot';
import { snapshotConformance } from '@cairn/testkit';

snapshotConformance({
  name: 'file (fsync)',
  create: ({ dir }) => FileSnapshotStore.open({ path: dir, ioThreads: 1 }),
});

snapshotConformance({
  name: 'file (no fsync)',
  create: ({ dir }) => FileSnapshotStore.open({ path: dir, fsync: false, ioThreads: 1 }),
});
