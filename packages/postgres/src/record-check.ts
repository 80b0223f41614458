import { crc32 } from '@cairn/actor-core';

/**
 * The CRC-32 stored with every event and snapshot row: over the id, the sequenceNr, the timestamp, the
 * serializer id, the event's tags (when it has any) and the payload, so a row altered behind Cairn's back
 * (a changed payload or tag, or one moved to another id or sequenceNr) fails its check when read.
 */
export function rowChecksum(
  persistenceId: string,
  sequenceNr: number,
  timestamp: number,
  serializerId: number,
  payload: Uint8Array,
  tags?: readonly string[],
): number {
  const tagged = tags && tags.length > 0 ? `${JSON.stringify(tags)}\u0000` : '';
  const header = Buffer.from(
    `${persistenceId}\u0000${sequenceNr}\u0000${timestamp}\u0000${serializerId}\u0000${tagged}`,
  );
  return crc32(payload, crc32(header));
}
