import type { PositionedEvent } from './query-reader';
import type { DeletionEnvelope, DeletionMarker } from './spi';
import { NO_TAGS } from './tags';

/**
 * The serializer id of a deletion marker (see `DeletableJournal`): a record with an empty payload that
 * no serializer decodes. Serializer ids 0-99 are reserved for Cairn; 0 is this one, and registering a
 * serializer under it is refused, so an event can never be taken for a marker.
 */
export const DELETION_MARKER_SERIALIZER_ID = 0;

/** The marker's payload: nothing. */
export const DELETION_MARKER_PAYLOAD = new Uint8Array(0);

/** True for a stored record that is a deletion marker rather than an event. */
export function isDeletionMarker(stored: { readonly serializerId: number }): boolean {
  return stored.serializerId === DELETION_MARKER_SERIALIZER_ID;
}

/** The marker as `readFrom(id, from, { deletions: true })` serves it. */
export function deletionMarker(
  persistenceId: string,
  stored: { readonly sequenceNr: number; readonly timestamp: number; readonly tags?: readonly string[] },
): DeletionMarker {
  return {
    deleted: true,
    persistenceId,
    sequenceNr: stored.sequenceNr,
    timestamp: stored.timestamp,
    tags: stored.tags ?? NO_TAGS,
    message: undefined,
  };
}

/** The marker as a query with `deletions: true` serves it. */
export function deletionEnvelope(event: PositionedEvent, offset: string): DeletionEnvelope {
  return { ...deletionMarker(event.persistenceId, event), offset };
}

/**
 * The pages of an ordered read without their deletion markers (a query that did not ask for them). A
 * page left empty is passed on empty: the query reader moves past it.
 */
export function withoutMarkers(
  pages: AsyncIterator<readonly PositionedEvent[]>,
): AsyncIterator<readonly PositionedEvent[]> {
  return {
    next: async () => {
      const next = await pages.next();
      if (next.done || !next.value.some(isDeletionMarker)) return next;
      return { done: false, value: next.value.filter((e) => !isDeletionMarker(e)) };
    },
    return: async () => (await pages.return?.()) ?? { done: true, value: undefined },
  };
}
