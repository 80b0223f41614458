import { checkOptionTypes, type PersistenceProvider } from '@cairn/actor-core';
import {
  FILE_SNAPSHOT_OPTION_TYPES,
  FileSnapshotStore,
  type FileSnapshotStoreOptions,
} from '@cairn/snapshot';
import { FileMessageJournal } from './file-message-journal';
import { FILE_JOURNAL_OPTION_TYPES, type FileMessageJournalOptions } from './journal-options';

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
};
