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
