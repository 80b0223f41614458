export {
  decodeSnapshotEnvelope,
  type EnvelopeSource,
  encodeSnapshotEnvelope,
  SNAPSHOT_ENVELOPE_OVERHEAD,
  SNAPSHOT_FORMAT_VERSION,
  SNAPSHOT_MAGIC,
} from './envelope';
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
  DEFAULT_IO_WORKER_FILE,
  defaultIoThreads,
  IoPool,
  type IoPoolOptions,
} from './io-pool';
