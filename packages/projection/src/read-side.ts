// The read-side SPI this package codes against, all from the core.
export {
  type EventEnvelope,
  type EventQuery,
  type EventsByIdOptions,
  keepsProjectionRecords,
  type OffsetStore,
  type ProjectionLock,
  type ProjectionRecordStore,
  type QueryOptions,
} from '@cairn/actor-core';
