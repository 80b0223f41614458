import * as fs from 'node:fs';
import { FileMessageJournal } from '@cairn/journal-file';
import { journalConformance } from '@cairn/testkit';
import { JOURNAL_IO_WORKER_FILE } from '../src/journal-io';

if (!fs.existsSync(JOURNAL_IO_WORKER_FILE)) {
  throw new Error(
    `${JOURNAL_IO_WORKER_FILE} is missing: the journal's IO threads run built JavaScript; run \`npm run build\``,
  );
}

journalConformance({
  name: 'file (fsync)',
  create: ({ dir }) => FileMessageJournal.open({ path: dir, ioThreads: 1 }),
  imports: true,
});

journalConformance({
  name: 'file (no fsync, small segments)',
  create: ({ dir }) => FileMessageJournal.open({ path: dir, fsync: false, ioThreads: 1, segmentSize: 4096 }),
  imports: true,
});
