export {
  DuplicateEntityKindError,
  DuplicatePersistenceIdError,
  StashOverflowError,
  UnknownEntityKindError,
} from './actor-errors';
export {
  type ActorRef,
  ActorSystem,
  type ActorSystemOptions,
  type AskOptions,
  DEFAULT_ASK_TIMEOUT_MS,
  DEFAULT_PASSIVATE_AFTER_MS,
  type OpenedPersistence,
  type SpawnOptions,
} from './actor-system';
export {
  backoffDelay,
  DEFAULT_STASH_CAPACITY,
  type EventAdapter,
  EventSourcedBehavior,
  type EventSourcedBehaviorOptions,
  type OnConflict,
  type RecoveryOptions,
  type Signal,
  type SnapshotAdapter,
  type Supervision,
  type SupervisionOptions,
} from './behavior';
export { Effect, type Effects, type SideEffect } from './effect';
export type { EntityRef } from './entities';
