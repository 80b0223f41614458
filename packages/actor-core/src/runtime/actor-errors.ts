import { PersistenceError } from '../errors';

/**
 * A command arrived while the actor's stash (commands waiting for recovery, a restart or a persist in
 * flight) was full. The command was not taken; slow down or raise `stashCapacity`.
 * Code ERR_STASH_OVERFLOW.
 */
export class StashOverflowError extends PersistenceError {
  readonly persistenceId: string;
  readonly capacity: number;

  constructor(persistenceId: string, capacity: number) {
    super(
      'ERR_STASH_OVERFLOW',
      `actor "${persistenceId}" already has ${capacity} commands waiting (stashCapacity); the command was not taken. ` +
        'Wait for replies before sending more, or raise stashCapacity',
    );
    this.persistenceId = persistenceId;
    this.capacity = capacity;
  }
}

/**
 * `spawn` was called for a persistenceId that already has a live actor in this system: two writers of
 * one id would interleave events. Stop the first (`ref.stop()`) before spawning again.
 * Code ERR_DUPLICATE_PERSISTENCE_ID.
 */
export class DuplicatePersistenceIdError extends PersistenceError {
  readonly persistenceId: string;

  constructor(persistenceId: string) {
    super(
      'ERR_DUPLICATE_PERSISTENCE_ID',
      `an actor with persistenceId "${persistenceId}" is already live in this system; ` +
        'use its ref, or stop it before spawning another',
    );
    this.persistenceId = persistenceId;
  }
}

/**
 * `entityRef`, `deleteEntity` or a message named an entity kind that was never registered with
 * `registerEntity` in this system. Nothing was sent. Code ERR_UNKNOWN_ENTITY_KIND.
 */
export class UnknownEntityKindError extends PersistenceError {
  readonly kind: string;

  constructor(kind: string, registered: readonly string[]) {
    super(
      'ERR_UNKNOWN_ENTITY_KIND',
      `no entity kind "${kind}" is registered in this actor system` +
        (registered.length > 0
          ? ` (registered: ${registered.map((k) => `"${k}"`).join(', ')})`
          : ' (none registered yet)') +
        '; call system.registerEntity(kind, factory) first',
    );
    this.kind = kind;
  }
}

/**
 * `registerEntity` was called for a kind this system already has: one kind has one behavior factory,
 * or two factories could build different actors for one id. Nothing changed.
 * Code ERR_DUPLICATE_ENTITY_KIND.
 */
export class DuplicateEntityKindError extends PersistenceError {
  readonly kind: string;

  constructor(kind: string) {
    super(
      'ERR_DUPLICATE_ENTITY_KIND',
      `entity kind "${kind}" is already registered in this actor system; register each kind once`,
    );
    this.kind = kind;
  }
}
