export { FileSnapshotStore, type FileSnapshotStoreOptions } from '@cairn/snapshot';
export {
  DEFAULT_LOCK_STALE_MS,
  DEFAULT_SEGMENT_SIZE,
  FileMessageJournal,
  type FileMessageJournalOptions,
} from './file-message-journal';
export { FILE_JOURNAL_OPTION_TYPES, provider } from './provider';
