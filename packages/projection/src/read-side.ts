// The read-side SPI this package codes against, all from the core.
export {
  type AsyncTransactionalOffsetStore,
  canTransact,
  canTransactAsync,
  type DeletionEnvelope,
  type EventEnvelope,
  type EventQuery,
  type EventsByIdOptions,
  keepsProjectionRecords,
  type OffsetStore,
  type ProjectionLock,
  type ProjectionRecordStore,
  type QueryOptions,
  type TransactionalOffsetStore,
} from '@cairn/actor-core';
