export {
  AbstractMessageJournal,
  DEFAULT_MAX_BATCH_DELAY_MS,
  DEFAULT_MAX_BATCH_SIZE,
  type JournalOptions,
  type JournalWrite,
  PositionedEventInBuffer,
  type StoredEvent,
  StoredEventInBuffer,
  type WriteConflicts,
} from './abstract-journal';
export {
  AbstractSnapshotStore,
  type SnapshotMetadata,
  type SnapshotStoreOptions,
  type StoredSnapshot,
} from './abstract-snapshot-store';
export type { BackpressureMode } from './backpressure';
export { CommitSignal, QueryAbortedError } from './commit-signal';
export {
  BUILTIN_PROVIDERS,
  createPersistence,
  type LoadConfigOptions,
  loadPersistenceConfig,
  loadProvider,
  type Persistence,
  type PersistenceConfig,
  type StoreConfig,
} from './config';
export {
  CONFIG_VARIABLES,
  type ConfigOrigin,
  describeConfigOrigin,
  persistenceConfigOrigin,
} from './config-origin';
export { crc32, crc32Range } from './crc32';
export {
  ActorStoppedError,
  AskTimeoutError,
  BackpressureError,
  ConfigError,
  type CorruptionLocation,
  DiskLimitError,
  isPersistenceError,
  JournalClosedError,
  JournalCorruptedError,
  JournalLockedError,
  LeaseHeldError,
  LeaseLostError,
  type LockHolder,
  PERSISTENCE_ERROR_CODES,
  PersistenceError,
  type PersistenceErrorCode,
  ReadOnlyError,
  RecoveryFailedError,
  SequenceConflictError,
  SnapshotCorruptedError,
  SnapshotStoreClosedError,
  StorageError,
  StoreMismatchError,
  WriteRejectedError,
} from './errors';
export {
  type HealthCheck,
  type HealthReport,
  type HealthStatus,
  healthReport,
  healthStatusValue,
} from './health';
export { canLease, type Lease, type LeaseOptions, type LeaseProvider } from './lease';
export { MemoryFaults } from './memory-faults';
export { MemoryJournalStore, MemoryMessageJournal, type MemoryMessageJournalOptions } from './memory-journal';
export { memoryProvider } from './memory-provider';
export {
  MemorySnapshotData,
  MemorySnapshotStore,
  type MemorySnapshotStoreOptions,
} from './memory-snapshot-store';
export {
  type ActorSystemMetrics,
  type JournalMetrics,
  LATENCY_BUCKETS_SECONDS,
  type LatencyHistogram,
  LatencyRecorder,
  type SnapshotStoreMetrics,
} from './metrics';
export { isJournalId, newJournalId, OffsetCodec } from './offset-codec';
export {
  checkOpenOptions,
  checkOptionTypes,
  JOURNAL_OPTION_TYPES,
  type OptionSchema,
  type OptionType,
  SNAPSHOT_OPTION_TYPES,
} from './provider-options';
export type { OrderedFilter, Position, PositionedEvent } from './query-reader';
export { defaultReporter, type PersistenceReport, type Reporter } from './report';
export * from './runtime';
export {
  JsonSerializer,
  jsonSerializer,
  MsgpackSerializer,
  type MsgpackSerializerOptions,
  msgpackSerializer,
  resolveSerializer,
  type SerializableClass,
  type Serializer,
  SerializerRegistry,
} from './serializer';
export {
  type AppendOptions,
  type AsyncTransactionalOffsetStore,
  type BatchedMessageJournal,
  type CompactableJournal,
  type CompactionResult,
  type CorruptionRepairResult,
  canCompact,
  canDelete,
  canFlush,
  canImport,
  canImportSnapshots,
  canListSnapshotIds,
  canOpenReadOnly,
  canQuery,
  canRepair,
  canReportHealth,
  canTransact,
  canTransactAsync,
  type DeletableJournal,
  type DeletionEnvelope,
  type DeletionMarker,
  type EventEnvelope,
  type EventQuery,
  type EventsByIdOptions,
  type FlushableJournal,
  type HealthReporting,
  hasJournalMetrics,
  hasSnapshotMetrics,
  type ImportableJournal,
  type ImportableSnapshotStore,
  type JournalCapabilities,
  type JournalEntry,
  keepsProjectionRecords,
  type ListableSnapshotStore,
  MAX_TAG_BYTES,
  MAX_TAGS_PER_EVENT,
  type MessageJournal,
  type MeteredJournal,
  type MeteredSnapshotStore,
  type OffsetStore,
  type PersistenceProvider,
  type ProjectionLock,
  type ProjectionRecordStore,
  type QueryOptions,
  type ReadOptions,
  type RepairableJournal,
  type SnapshotCriteria,
  type SnapshotEntry,
  type SnapshotInfo,
  type SnapshotStore,
  type SnapshotStoreCapabilities,
  type StoreFiles,
  seesForeignCommits,
  type TransactionalOffsetStore,
  type WithDeletions,
} from './spi';
export { type ClaimOptions, claimStoreDirectory, STORE_MARKER_FILE, storeBackendOf } from './store-marker';
export { checkDirectoryPath } from './store-path';
export { checkTag, checkTags, NO_TAGS } from './tags';
export {
  checkCount,
  checkOffsetToSave,
  checkPersistenceId,
  checkProjectionName,
  checkSequenceNr,
  MAX_PERSISTENCE_ID_BYTES,
  MAX_PROJECTION_NAME_BYTES,
} from './validation';
