import { JournalCorruptedError } from '@cairn/actor-core';
import type { LmdbEnvironment } from './environment';
import {
  decodeIdMetadata,
  describeEntryKey,
  encodeNumber,
  entryKey,
  HEAD_KEY,
  metadataKey,
  positionKey,
} from './record-codec';

/** Bytes of a version-1 event header, up to and including its timestamp. */
const V1_TIMESTAMP_END = 17;

/**
 * Gives every event of a format-1 environment (written before the global order existed) its position,
 * once, inside the caller's write transaction (the format upgrade): positions 1..n go into the `positions`
 * index and, since version-1 records are never rewritten, into `legacyPositions`; the head counter is set
 * to n. Returns n.
 *
 * The order is deterministic and keeps each id's sequenceNr order: by timestamp, then by the id's key
 * bytes, then by sequenceNr, where an event's timestamp counts as at least its predecessor's in the same
 * id (a clock that stepped back cannot put an id's events out of order). Events below an id's low-water
 * mark (truncated) get no position.
 *
 * Memory: about 20 bytes per event for the sort (ids are kept once each), for this one-off upgrade.
 */
export function orderUnorderedEvents(env: LmdbEnvironment): number {
  const prefixes: Buffer[] = [];
  let idOf = new Uint32Array(1024);
  let seqOf = new Float64Array(1024);
  let timeOf = new Float64Array(1024);
  let count = 0;
  let prefix: Buffer | undefined;
  let lowWater = 0;
  let lastTime = 0;
  for (const { key, value } of env.journalViews.getRange({})) {
    // Views into reused buffers: read what is kept before the loop steps on.
    const keyBuf = key as Buffer;
    const idLength = keyBuf.readUInt16BE(0);
    if (keyBuf.length !== idLength + 10) {
      throw new JournalCorruptedError({
        key: `journal:${describeEntryKey(keyBuf)}`,
        reason: 'journal key is not [persistenceId, sequenceNr]; cannot give the events positions',
      });
    }
    const sequenceNr = keyBuf.readUInt32BE(idLength + 2) * 0x1_0000_0000 + keyBuf.readUInt32BE(idLength + 6);
    // The record is not verified here (reads verify it and name it if damaged); a timestamp that is not a
    // sane number just counts as its predecessor's.
    const valueBuf = value as Buffer;
    const stamp = valueBuf.length >= V1_TIMESTAMP_END ? valueBuf.readDoubleLE(9) : 0;
    if (
      prefix === undefined ||
      prefix.length !== idLength + 2 ||
      keyBuf.compare(prefix, 0, prefix.length, 0, prefix.length) !== 0
    ) {
      // Copied before the metadata lookup below, which reuses the buffers `key` and `value` view.
      prefix = Buffer.from(keyBuf.subarray(0, idLength + 2));
      prefixes.push(prefix);
      const id = prefix.toString('utf8', 2);
      const metaKey = metadataKey(id);
      const raw = env.metadata.get(metaKey);
      const meta = raw === undefined ? undefined : decodeIdMetadata(metaKey, raw);
      if (typeof meta === 'string') {
        throw new JournalCorruptedError({ persistenceId: id, key: `metadata:${id}`, reason: meta });
      }
      lowWater = meta?.lowWater ?? 0;
      lastTime = 0;
    }
    if (sequenceNr < lowWater) continue;
    if (Number.isSafeInteger(stamp) && stamp > lastTime) lastTime = stamp;
    if (count === idOf.length) {
      idOf = grow(idOf, new Uint32Array(count * 2));
      seqOf = grow(seqOf, new Float64Array(count * 2));
      timeOf = grow(timeOf, new Float64Array(count * 2));
    }
    idOf[count] = prefixes.length - 1;
    seqOf[count] = sequenceNr;
    timeOf[count] = lastTime;
    count++;
  }
  if (count === 0) return 0;
  const order = new Uint32Array(count);
  for (let i = 0; i < count; i++) order[i] = i;
  order.sort((a, b) => timeOf[a]! - timeOf[b]! || idOf[a]! - idOf[b]! || seqOf[a]! - seqOf[b]!);
  for (let i = 0; i < count; i++) {
    const at = order[i]!;
    const key = entryKey(prefixes[idOf[at]!]!, seqOf[at]!);
    const position = positionKey(i + 1);
    env.positions.putSync(position, key);
    env.legacyPositions.putSync(key, position);
  }
  env.metadata.putSync(HEAD_KEY, encodeNumber(HEAD_KEY, count));
  return count;
}

function grow<T extends Uint32Array | Float64Array>(from: T, to: T): T {
  to.set(from);
  return to;
}
