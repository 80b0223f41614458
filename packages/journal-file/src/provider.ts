import { readdir, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { checkOptionTypes, type PersistenceProvider, type StoreFiles } from '@cairn/actor-core';
import {
  FILE_SNAPSHOT_OPTION_TYPES,
  FileSnapshotStore,
  type FileSnapshotStoreOptions,
} from '@cairn/snapshot';
import { FileMessageJournal } from './file-message-journal';
import { FILE_JOURNAL_OPTION_TYPES, type FileMessageJournalOptions } from './journal-options';
import { parseSegmentFileName } from './record-codec';

/**
 * The "file" provider: FileMessageJournal for the journal, FileSnapshotStore (@cairn/snapshot) for
 * snapshots, each in its own directory (`path`).
 */
export const provider: PersistenceProvider = {
  name: 'file',
  requiresPath: true,
  createJournal: (options) => FileMessageJournal.open(options as unknown as FileMessageJournalOptions),
  createSnapshotStore: (options) => FileSnapshotStore.open(options as unknown as FileSnapshotStoreOptions),
  createOffsetStore: async (journal) => {
    // Offsets live in the journal's own directory; the journal is always one this provider opened.
    if (!(journal instanceof FileMessageJournal)) {
      throw new TypeError('the file provider keeps offsets only for a journal it opened');
    }
    return journal.offsetStore();
  },
  validateOptions: (kind, options) =>
    checkOptionTypes(options, kind === 'journal' ? FILE_JOURNAL_OPTION_TYPES : FILE_SNAPSHOT_OPTION_TYPES),
  detect: (directory, kind) =>
    kind === 'journal' ? FileMessageJournal.holdsJournal(directory) : FileSnapshotStore.holdsStore(directory),
  describeFiles: (directory, kind) =>
    kind === 'journal' ? describeJournalFiles(directory) : FileSnapshotStore.describeFiles(directory),
};

/** A journal directory's segments (`NNNNNNNNNNNNNNNN.log`) and sealed segments' indexes (`.idx`). */
async function describeJournalFiles(directory: string): Promise<StoreFiles[]> {
  const segments = { label: 'segments', count: 0, bytes: 0 };
  const indexes = { label: 'segment indexes', count: 0, bytes: 0 };
  for (const name of await readdir(directory)) {
    const kind =
      parseSegmentFileName(name) !== undefined
        ? segments
        : name.endsWith('.idx') && parseSegmentFileName(`${name.slice(0, -4)}.log`) !== undefined
          ? indexes
          : undefined;
    if (!kind) continue;
    const size = await stat(path.join(directory, name)).then(
      (s) => s.size,
      () => undefined, // deleted meanwhile by a live writer
    );
    if (size === undefined) continue;
    kind.count++;
    kind.bytes += size;
  }
  return [segments, indexes];
}
