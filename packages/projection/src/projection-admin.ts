import { ProjectionRunningError } from './projection-errors';
import type { ProjectionSource } from './projection-options';
import { decodeStatus, encodeStatus, type ProjectionStatus } from './projection-records';
import type { EventEnvelope, EventQuery, ProjectionRecordStore } from './read-side';

/** One projection as operators see it (`cairn projections`). */
export interface ProjectionInfo {
  readonly name: string;
  /** The saved offset: the projection resumes just after it (undefined: from the first event). */
  readonly offset: string | undefined;
  /**
   * running: its lock is held now; stopped / failed: as it last reported; `unknown`: no status was ever
   * recorded for it (an offset saved by something else).
   */
  readonly state: 'running' | 'stopped' | 'failed' | 'unknown';
  readonly source: ProjectionSource | undefined;
  /** Events of its source after the saved offset (undefined without a source or a query). */
  readonly behind: number | undefined;
  /**
   * Milliseconds between the newest event of its source and the last event it handled: how far the read
   * model trails (0 when it is not behind; undefined when unknown).
   */
  readonly lagMs: number | undefined;
  /** What went wrong, or how it ended when it did not stop cleanly. */
  readonly note: string | undefined;
  readonly status: ProjectionStatus | undefined;
}

/** Every projection the store keeps, with how far each is behind `query` (when given). */
export async function listProjections(
  offsets: ProjectionRecordStore,
  query?: EventQuery,
): Promise<ProjectionInfo[]> {
  const infos: ProjectionInfo[] = [];
  for (const name of await offsets.names()) {
    const offset = await offsets.load(name);
    const status = decodeStatus(await offsets.loadStatus(name));
    const locked = await offsets.projectionLocked(name);
    let state: ProjectionInfo['state'] = locked ? 'running' : (status?.state ?? 'unknown');
    let note: string | undefined;
    if (!locked && status?.state === 'running') {
      state = 'stopped';
      note = `ended without stop() (pid ${status.pid} killed or crashed?); resumes after the saved offset`;
    } else if (state === 'failed' && status) {
      const at = status.failedEvent
        ? ` at ${status.failedEvent.persistenceId} #${status.failedEvent.sequenceNr} (offset ${status.failedEvent.offset})`
        : '';
      note = `failed${at}: ${status.error ?? 'unknown error'}`;
    }
    let behind: number | undefined;
    let lagMs: number | undefined;
    if (query && status?.source) {
      let newest: number | undefined;
      behind = 0;
      for await (const e of openSource(query, status.source, offset)) {
        behind++;
        newest = e.timestamp;
      }
      lagMs =
        behind === 0
          ? 0
          : newest !== undefined && status.lastEventTimestamp !== undefined
            ? Math.max(0, newest - status.lastEventTimestamp)
            : undefined;
    }
    infos.push({ name, offset, state, source: status?.source, behind, lagMs, note, status });
  }
  return infos;
}

async function refuseRunning(offsets: ProjectionRecordStore, name: string, what: string): Promise<void> {
  if (await offsets.projectionLocked(name)) {
    throw new ProjectionRunningError(name, `(its lock is held); ${what} only a stopped projection`);
  }
}

/**
 * Moves a stopped projection's offset: to the start (`to` undefined: the next run handles every event
 * again) or to `to`, an offset of this journal (checked against `query` first: a malformed one is a
 * TypeError and nothing changes). A failed projection becomes stopped. Rejects with
 * ProjectionRunningError while it runs.
 */
export async function resetProjection(
  offsets: ProjectionRecordStore,
  query: EventQuery,
  name: string,
  to?: string,
): Promise<void> {
  await refuseRunning(offsets, name, 'reset');
  if (to !== undefined) {
    // Opening a query after it checks the offset (the journal refuses a malformed or foreign one).
    for await (const _ of query.allEvents({ after: to })) break;
  }
  const status = decodeStatus(await offsets.loadStatus(name));
  if (to === undefined) await offsets.deleteOffset(name);
  else await offsets.save(name, to);
  if (status) {
    const { error: _e, failedEvent: _f, ...rest } = status;
    await offsets.saveStatus(name, encodeStatus({ ...rest, state: 'stopped', updatedAt: Date.now() }));
  }
}

/**
 * Moves a stopped (or failed) projection past the one event after its saved offset (its poison event),
 * records the skip in its status and resolves to the event skipped, for the operator's log. Needs the
 * source the projection recorded; rejects with ProjectionRunningError while it runs, and with an Error
 * when there is no event to skip.
 */
export async function skipProjection(
  offsets: ProjectionRecordStore,
  query: EventQuery,
  name: string,
): Promise<EventEnvelope> {
  await refuseRunning(offsets, name, 'skip');
  const status = decodeStatus(await offsets.loadStatus(name));
  if (!status) {
    throw new Error(`projection "${name}" has no recorded status, so its source is unknown: nothing skipped`);
  }
  const offset = await offsets.load(name);
  let next: EventEnvelope | undefined;
  for await (const e of openSource(query, status.source, offset)) {
    next = e;
    break;
  }
  if (!next) throw new Error(`projection "${name}" has no event after its offset to skip: nothing changed`);
  await offsets.save(name, next.offset);
  const { error: _e, failedEvent: _f, ...rest } = status;
  const skipped = {
    persistenceId: next.persistenceId,
    sequenceNr: next.sequenceNr,
    offset: next.offset,
    at: Date.now(),
  };
  await offsets.saveStatus(
    name,
    encodeStatus({
      ...rest,
      state: 'stopped',
      updatedAt: Date.now(),
      skipped: [...(status.skipped ?? []), skipped],
    }),
  );
  return next;
}

/** The current (not live) query of `source` after `offset`. */
export function openSource(
  query: EventQuery,
  source: ProjectionSource,
  after: string | undefined,
  extra: { live?: boolean; signal?: AbortSignal; deletions?: boolean } = {},
): AsyncIterable<EventEnvelope> {
  const options = { ...(after === undefined ? {} : { after }), ...extra };
  if ('all' in source) return query.allEvents(options);
  if ('tag' in source) return query.eventsByTag(source.tag, options);
  return query.eventsByPersistenceId(source.persistenceId, options);
}
