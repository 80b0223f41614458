export { DirectoryLock, lockFileName, ownerFileName } from './directory-lock';
export {
  decodeSnapshotEnvelope,
  type EnvelopeSource,
  encodeSnapshotEnvelope,
  SNAPSHOT_ENVELOPE_OVERHEAD,
  SNAPSHOT_FORMAT_VERSION,
  SNAPSHOT_MAGIC,
} from './envelope';
export {
  FILE_SNAPSHOT_OPTION_TYPES,
  FileSnapshotStore,
  type FileSnapshotStoreOptions,
  parseSnapshotFileName,
  snapshotFileName,
  TEMP_DIRECTORY,
} from './file-snapshot-store';
export {
  atomicWriteTempName,
  atomicWriteTempPid,
  type IoData,
  type IoFailure,
  type IoOperation,
  type IoOperationMap,
  type IoOperationName,
  type IoOperations,
  ioOperations,
  ioWorkerModule,
  isIoFailure,
  ownsWholeBuffer,
  type WriteFileAtomicArgs,
} from './io-operations';
export {
  type CustomIoOperation,
  DEFAULT_CLOSE_TIMEOUT_MS,
  DEFAULT_IO_WORKER_FILE,
  DEFAULT_TASKS_PER_THREAD,
  defaultIoThreads,
  endIdleIoThreads,
  IoPool,
  type IoPoolOptions,
  type SharedIoPoolOptions,
} from './io-pool';
export {
  isHashedDirectoryName,
  MAX_ESCAPED_NAME_LENGTH,
  PERSISTENCE_ID_FILE,
  type PersistenceIdDirectoryName,
  persistenceIdDirectoryName,
  persistenceIdFromDirectoryName,
} from './persistence-id-directory';
