import { PersistenceError } from '@cairn/actor-core';

/**
 * A write (append, appendBatch, importEntries, truncateBefore; save, delete, prune) was called on a
 * journal or snapshot store opened with `readOnly: true`, or a read-only open found an environment that
 * only a writable open can prepare. Nothing was written. Code `ERR_READ_ONLY`.
 */
export class ReadOnlyError extends PersistenceError {
  /** The environment directory. */
  readonly path: string;

  constructor(path: string, message: string) {
    super('ERR_READ_ONLY', `${path} is open read-only: ${message}`);
    this.path = path;
  }
}
