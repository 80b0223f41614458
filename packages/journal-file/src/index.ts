export { ReadOnlyError } from '@cairn/actor-core';
export { endIdleIoThreads, FileSnapshotStore, type FileSnapshotStoreOptions } from '@cairn/snapshot';
export { FileMessageJournal } from './file-message-journal';
export type { RepairEntry } from './index-file';
export { RepairRefusedError } from './journal-errors';
export {
  DEFAULT_LOCK_STALE_MS,
  DEFAULT_SEGMENT_SIZE,
  FILE_JOURNAL_OPTION_TYPES,
  type FileMessageJournalOptions,
} from './journal-options';
export { provider } from './provider';
export { type CorruptionRepair, QUARANTINE_DIR } from './repair';
