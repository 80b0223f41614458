export { ReadOnlyError } from '@cairn/actor-core';
export { FileSnapshotStore, type FileSnapshotStoreOptions } from '@cairn/snapshot';
export {
  type CorruptionRepair,
  DEFAULT_LOCK_STALE_MS,
  DEFAULT_SEGMENT_SIZE,
  FileMessageJournal,
  type FileMessageJournalOptions,
  QUARANTINE_DIR,
} from './file-message-journal';
export { RepairRefusedError } from './journal-errors';
export { FILE_JOURNAL_OPTION_TYPES, provider } from './provider';
