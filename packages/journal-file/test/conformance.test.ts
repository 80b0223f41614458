import { FileMessageJournal } from '@cairn/journal-file';
import { journalConformance } from '@cairn/testkit';

journalConformance({
  name: 'file (fsync)',
  create: ({ dir }) => FileMessageJournal.open({ path: dir, ioThreads: 1 }),
});

journalConformance({
  name: 'file (no fsync, small segments)',
  create: ({ dir }) => FileMessageJournal.open({ path: dir, fsync: false, ioThreads: 1, segmentSize: 4096 }),
});
