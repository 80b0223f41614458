export { LmdbMessageJournal, type LmdbMessageJournalOptions } from './lmdb-message-journal';
export { LmdbSnapshotStore, type LmdbSnapshotStoreOptions } from './lmdb-snapshot-store';
export { provider } from './provider';
export { ReadOnlyError } from './read-only-error';
