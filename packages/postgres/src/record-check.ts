import { crc32 } from '@cairn/actor-core';

/**
 * The CRC-32 stored with every event and snapshot row: over the id, the sequenceNr, the timestamp, the
 * serializer id and the payload, so a row altered behind Cairn's back (a changed payload, or one moved to
 * another id or sequenceNr) fails its check when read.
 */
export function rowChecksum(
  persistenceId: string,
  sequenceNr: number,
  timestamp: number,
  serializerId: number,
  payload: Uint8Array,
): number {
  const header = Buffer.from(
    `${persistenceId}\u0000${sequenceNr}\u0000${timestamp}\u0000${serializerId}\u0000`,
  );
  return crc32(payload, crc32(header));
}
