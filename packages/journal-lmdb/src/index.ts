export { ReadOnlyError } from '@cairn/actor-core';
export { LmdbMessageJournal, type LmdbMessageJournalOptions } from './lmdb-message-journal';
export { LmdbOffsetStore, type ReadModelOptions } from './lmdb-offset-store';
export { LmdbSnapshotStore, type LmdbSnapshotStoreOptions } from './lmdb-snapshot-store';
export { provider } from './provider';
