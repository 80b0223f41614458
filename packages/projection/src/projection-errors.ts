import { PersistenceError } from '@cairn/actor-core';

/**
 * `runProjection` was refused: a projection of that name already runs, in this process or (where the
 * offset store is shared and offers a lock) in another one. Nothing was started. Code
 * `ERR_PROJECTION_RUNNING`.
 */
export class ProjectionRunningError extends PersistenceError {
  readonly projection: string;

  constructor(projection: string, where: string, options?: { cause?: unknown }) {
    super(
      'ERR_PROJECTION_RUNNING',
      `projection "${projection}" is already running ${where}; stop it first (one instance per name runs at a time)`,
      options,
    );
    this.projection = projection;
  }
}

/** Where a projection stopped: the event it could not get past, when there was one. */
export interface FailedEvent {
  readonly persistenceId: string;
  readonly sequenceNr: number;
  readonly offset: string;
}

/**
 * A projection gave up: its handler (or eventAdapter) kept failing for one event past `maxRetries`, its
 * query kept failing, its journal was closed, or its offset could not be saved. The projection stopped
 * with the offset of the last event handled saved; the event named here was NOT handled and will be the
 * first one offered when the projection is started again (or skipped by an operator on purpose).
 * Code `ERR_PROJECTION_FAILED`; `cause` is the last error.
 */
export class ProjectionFailedError extends PersistenceError {
  readonly projection: string;
  readonly event: FailedEvent | undefined;
  readonly attempts: number;

  constructor(
    projection: string,
    reason: string,
    details: { event?: FailedEvent; attempts: number; cause: unknown },
  ) {
    const at = details.event
      ? ` at ${details.event.persistenceId} #${details.event.sequenceNr} (offset ${details.event.offset})`
      : '';
    super(
      'ERR_PROJECTION_FAILED',
      `projection "${projection}" failed${at} after ${details.attempts} attempt(s): ${reason}: ${messageOf(details.cause)}`,
      { cause: details.cause },
    );
    this.projection = projection;
    this.event = details.event;
    this.attempts = details.attempts;
  }
}

export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
