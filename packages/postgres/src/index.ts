export { PostgresMessageJournal } from './postgres-message-journal';
export { PostgresOffsetStore, type PostgresTransaction } from './postgres-offset-store';
export {
  DEFAULT_POOL_SIZE,
  DEFAULT_SCHEMA,
  DEFAULT_STATEMENT_TIMEOUT_MS,
  type PostgresConnectionOptions,
  type PostgresMessageJournalOptions,
  type PostgresSnapshotStoreOptions,
} from './postgres-options';
export { PostgresSnapshotStore } from './postgres-snapshot-store';
export { provider } from './provider';
export { SCHEMA_VERSION } from './schema';
