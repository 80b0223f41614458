import * as fs from 'node:fs';
import { DEFAULT_IO_WORKER_FILE, FileSnapshotStore } from '@cairn/snapshot';
import { snapshotConformance } from '@cairn/testkit';

if (!fs.existsSync(DEFAULT_IO_WORKER_FILE)) {
  throw new Error(
    `${DEFAULT_IO_WORKER_FILE} is missing: the store's IO threads run built JavaScript; run \`npm run build\``,
  );
}

snapshotConformance({
  name: 'file (fsync)',
  create: ({ dir }) => FileSnapshotStore.open({ path: dir, ioThreads: 1 }),
});

snapshotConformance({
  name: 'file (no fsync)',
  create: ({ dir }) => FileSnapshotStore.open({ path: dir, fsync: false, ioThreads: 1 }),
});
