import { PersistenceError } from '@cairn/actor-core';

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
