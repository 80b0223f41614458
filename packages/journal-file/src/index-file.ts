// actor-core's CRC32 module itself: this file also runs in IO threads, which need none of the rest.
import { crc32 } from '@cairn/actor-core/crc32';
import type { SegmentContents } from './segment-scan';

/**
 * Two small checksummed files beside the segments:
 *
 * `NNNNNNNNNNNNNNNN.idx`, written once when a segment is sealed, so that opening the journal reads it
 * instead of scanning the segment:
 *   "CAIRNIDX", u32 version (2), u32 CRC32 of everything after these 16 bytes, then
 *   f64 segment, f64 end (the segment's length when sealed), u32 ids JSON length, ids JSON (an array of
 *   strings), u32 run count, runs (5 f64 each), u32 mark count, marks (2 f64 each), u32 event count,
 *   events (5 f64 each: id index, offset, length, sequenceNr, position), u32 tags JSON length, tags JSON,
 *   u32 tagged count, tagged (2 f64 each: event number, tag index). A version-1 index (no events) is
 *   stale: the segment is scanned again and, opened for writing, gets a new index.
 *
 * `checkpoint`, rewritten atomically (temp file, fsync, rename, directory fsync) before segments are
 * deleted or compacted, so the low-water marks those segments held outlive them, and so a segment that
 * disappears without this journal deleting it is noticed:
 *   "CAIRNCKP", u32 version, u32 CRC32 of the JSON that follows:
 *   { "marks": [[id, lowWater], ...], "segments": [live segment numbers], "through": newest number,
 *     "repairs": [RepairEntry, ...] (left out when there are none, so older builds read it as before),
 *     "lastPosition": the highest position ever given to an event (so positions are never reused, even
 *     once the segments holding the last ones are deleted),
 *     "legacy": [[id, first sequenceNr, count, first position], ...] the positions given to format-1
 *     events (written before events had positions) at the first open under format 2, by physical order,
 *     fixed from then on (compaction moves records later), "legacyCount": how many positions they took }.
 */

const INDEX_MAGIC = Buffer.from('CAIRNIDX', 'latin1');
const CHECKPOINT_MAGIC = Buffer.from('CAIRNCKP', 'latin1');
const VERSION = 1;
const INDEX_VERSION = 2;

export const CHECKPOINT_FILE = 'checkpoint';

export function encodeIndex(contents: SegmentContents): Buffer {
  const ids = Buffer.from(JSON.stringify(contents.ids), 'utf8');
  const tags = Buffer.from(JSON.stringify(contents.tags), 'utf8');
  const size =
    16 +
    16 +
    4 +
    ids.length +
    4 +
    contents.runs.length * 8 +
    4 +
    contents.marks.length * 8 +
    4 +
    contents.events.length * 8 +
    4 +
    tags.length +
    4 +
    contents.tagged.length * 8;
  const bytes = Buffer.alloc(size);
  INDEX_MAGIC.copy(bytes, 0);
  bytes.writeUInt32LE(INDEX_VERSION, 8);
  let at = 16;
  at = bytes.writeDoubleLE(contents.segment, at);
  at = bytes.writeDoubleLE(contents.end, at);
  at = bytes.writeUInt32LE(ids.length, at);
  at += ids.copy(bytes, at);
  at = bytes.writeUInt32LE(contents.runs.length / 5, at);
  at += copyDoubles(contents.runs, bytes, at);
  at = bytes.writeUInt32LE(contents.marks.length / 2, at);
  at += copyDoubles(contents.marks, bytes, at);
  at = bytes.writeUInt32LE(contents.events.length / 5, at);
  at += copyDoubles(contents.events, bytes, at);
  at = bytes.writeUInt32LE(tags.length, at);
  at += tags.copy(bytes, at);
  at = bytes.writeUInt32LE(contents.tagged.length / 2, at);
  at += copyDoubles(contents.tagged, bytes, at);
  bytes.writeUInt32LE(crc32(bytes.subarray(16)), 12);
  return bytes;
}

/** The index's contents, or why it cannot be used (then the segment is scanned instead). */
export function decodeIndex(bytes: Buffer, segment: number): SegmentContents | { reason: string } {
  if (bytes.length < 36 || !bytes.subarray(0, 8).equals(INDEX_MAGIC)) return { reason: 'not an index file' };
  if (bytes.readUInt32LE(8) !== INDEX_VERSION) return { reason: `index version ${bytes.readUInt32LE(8)}` };
  if (bytes.readUInt32LE(12) !== crc32(bytes.subarray(16))) return { reason: 'index CRC mismatch' };
  try {
    let at = 16;
    const number = bytes.readDoubleLE(at);
    const end = bytes.readDoubleLE(at + 8);
    at += 16;
    if (number !== segment) return { reason: `index is for segment ${number}` };
    const idsLength = bytes.readUInt32LE(at);
    at += 4;
    const ids = JSON.parse(bytes.toString('utf8', at, at + idsLength)) as string[];
    at += idsLength;
    const runCount = bytes.readUInt32LE(at) * 5;
    at += 4;
    const runs = readDoubles(bytes, at, runCount);
    at += runCount * 8;
    const markCount = bytes.readUInt32LE(at) * 2;
    at += 4;
    const marks = readDoubles(bytes, at, markCount);
    at += markCount * 8;
    const eventCount = bytes.readUInt32LE(at) * 5;
    at += 4;
    const events = readDoubles(bytes, at, eventCount);
    at += eventCount * 8;
    const tagsLength = bytes.readUInt32LE(at);
    at += 4;
    const tags = JSON.parse(bytes.toString('utf8', at, at + tagsLength)) as string[];
    at += tagsLength;
    const taggedCount = bytes.readUInt32LE(at) * 2;
    at += 4;
    const tagged = readDoubles(bytes, at, taggedCount);
    at += taggedCount * 8;
    if (at !== bytes.length) return { reason: 'index length mismatch' };
    return { segment, ids, runs, marks, end, events, tags, tagged };
  } catch (e) {
    return { reason: `index unreadable: ${(e as Error).message}` };
  }
}

// Doubles are stored little-endian; on a little-endian machine (every platform Node ships for but s390x)
// they are copied as memory, which makes loading a 400,000-run index a memcpy instead of a loop.
const LITTLE_ENDIAN = new Uint8Array(new Float64Array([1]).buffer)[7] === 0x3f;

function copyDoubles(values: Float64Array, into: Buffer, at: number): number {
  if (LITTLE_ENDIAN) {
    into.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), at);
  } else {
    for (let i = 0; i < values.length; i++) into.writeDoubleLE(values[i]!, at + i * 8);
  }
  return values.byteLength;
}

function readDoubles(bytes: Buffer, at: number, count: number): Float64Array {
  if (at + count * 8 > bytes.length) throw new RangeError('index cut short');
  if (LITTLE_ENDIAN) {
    // slice copies into a fresh, aligned ArrayBuffer.
    return new Float64Array(bytes.buffer.slice(bytes.byteOffset + at, bytes.byteOffset + at + count * 8));
  }
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) out[i] = bytes.readDoubleLE(at + i * 8);
  return out;
}

/**
 * One `repairAfterCorruption`: the id's records from `first` through `last` in segments numbered below
 * `since` are dead (copied to `quarantine`, never served again). Events of the id numbered `first` or
 * more in segment `since` and later were appended after the repair. `since` is a segment that was new
 * and empty when the repair was made, so the rule holds however later compaction moves records inside
 * a segment: records never move between segments.
 */
export interface RepairEntry {
  readonly id: string;
  readonly first: number;
  readonly last: number;
  readonly since: number;
  /**
   * Where record `first` starts when it sits inside a run of good records (a batch): the run is cut
   * there. Absent when `first` starts a run or is not in the index (a record the scan could not read).
   */
  readonly cut?: { readonly segment: number; readonly offset: number };
  /** The quarantine file holding the cut bytes (relative to the journal directory). */
  readonly quarantine: string;
  /** When the repair was made, ms since epoch. */
  readonly at: number;
  /**
   * When an operator acknowledged the cut (`acknowledgeRepairs`), ms since epoch. The dead records it
   * covers are then history: opening the journal no longer reports them as corruption found.
   */
  readonly acknowledged?: number;
}

/** What the checkpoint holds. */
export interface Checkpoint {
  /** Every id's low-water mark (ids without one are left out). */
  readonly marks: Array<[string, number]>;
  /** The segments that exist once the deletions it precedes are done. */
  readonly segments: number[];
  /** The newest segment number when it was written: every later number must exist too. */
  readonly through: number;
  /** Repairs whose dead records may still be in a segment (absent: none). */
  readonly repairs?: readonly RepairEntry[];
  /** The highest position ever given to an event (absent: written before positions existed). */
  readonly lastPosition?: number;
  /** Positions of format-1 events: [id, first sequenceNr, count, first position] runs (see above). */
  readonly legacy?: ReadonlyArray<readonly [string, number, number, number]>;
  /** How many positions the format-1 events took (1..legacyCount). */
  readonly legacyCount?: number;
}

export function encodeCheckpoint(checkpoint: Checkpoint): Buffer {
  const json = Buffer.from(JSON.stringify(checkpoint), 'utf8');
  const header = Buffer.alloc(16);
  CHECKPOINT_MAGIC.copy(header, 0);
  header.writeUInt32LE(VERSION, 8);
  header.writeUInt32LE(crc32(json), 12);
  return Buffer.concat([header, json]);
}

export function decodeCheckpoint(bytes: Buffer): Checkpoint | { reason: string } {
  if (bytes.length < 16 || !bytes.subarray(0, 8).equals(CHECKPOINT_MAGIC)) {
    return { reason: 'not a Cairn checkpoint (bad magic)' };
  }
  if (bytes.readUInt32LE(8) !== VERSION) return { reason: `checkpoint version ${bytes.readUInt32LE(8)}` };
  if (bytes.readUInt32LE(12) !== crc32(bytes.subarray(16))) return { reason: 'checkpoint CRC mismatch' };
  try {
    const parsed = JSON.parse(bytes.toString('utf8', 16)) as Checkpoint;
    if (
      !Array.isArray(parsed.marks) ||
      !Array.isArray(parsed.segments) ||
      typeof parsed.through !== 'number' ||
      (parsed.repairs !== undefined && !Array.isArray(parsed.repairs))
    ) {
      return { reason: 'checkpoint fields missing' };
    }
    return parsed;
  } catch (e) {
    return { reason: `checkpoint unreadable: ${(e as Error).message}` };
  }
}
