export {
  DEFAULT_LOCK_STALE_MS,
  DEFAULT_SEGMENT_SIZE,
  FileMessageJournal,
  type FileMessageJournalOptions,
} from './file-message-journal';
