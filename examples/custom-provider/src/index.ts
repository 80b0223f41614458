export { JOURNAL_FILE, JSONL_JOURNAL_OPTIONS, JsonlJournal, type JsonlJournalOptions } from './jsonl-journal';
export {
  JSONL_SNAPSHOT_OPTIONS,
  JsonlSnapshotStore,
  type JsonlSnapshotStoreOptions,
} from './jsonl-snapshot-store';
export { provider } from './provider';
