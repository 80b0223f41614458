import { PersistenceError } from '@cairn/actor-core';

/**
 * A write (append, appendBatch, importEntries, truncateBefore, compact, repairAfterCorruption) was called
 * on a journal opened with `readOnly: true`. Nothing was written. Code `ERR_READ_ONLY` (the same code as
 * @cairn/journal-lmdb's read-only error, so one `isPersistenceError(e, 'ERR_READ_ONLY')` covers both).
 */
export class ReadOnlyError extends PersistenceError {
  /** The journal directory. */
  readonly path: string;

  constructor(path: string, message: string) {
    super('ERR_READ_ONLY', `${path} is open read-only: ${message}`);
    this.path = path;
  }
}

/**
 * `repairAfterCorruption` was asked to cut back an id that reads back clean (or does not exist): there
 * is nothing to repair, and nothing was changed. Code `ERR_REPAIR_REFUSED`.
 */
export class RepairRefusedError extends PersistenceError {
  readonly persistenceId: string;

  constructor(persistenceId: string, message: string) {
    super('ERR_REPAIR_REFUSED', `repair of "${persistenceId}" refused, nothing changed: ${message}`);
    this.persistenceId = persistenceId;
  }
}
