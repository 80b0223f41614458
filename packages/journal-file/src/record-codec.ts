// actor-core's CRC32 module itself: this file also runs in IO threads, which need none of the rest.
import { crc32, crc32Range } from '@cairn/actor-core/crc32';

/**
 * The bytes of a segment file (all integers little-endian):
 *
 * segment header, 32 bytes:
 *   [0..8)   magic "CAIRNSEG"
 *   [8..12)  u32 format version (2 since events carry positions and tags; version 1 segments, written
 *            before, are still read: they hold only kind-1 event records)
 *   [12..16) u32 reserved (0)
 *   [16..24) f64 segment number (the same number as the file name)
 *   [24..28) u32 reserved (0)
 *   [28..32) u32 CRC32 of [0..28)
 *
 * then frames, one per commit (a group commit of many appends, or a truncation mark). A frame is the
 * unit of atomicity: on reopen a frame that is not whole is cut off whole.
 *
 * frame header, 16 bytes:
 *   [0..4)   u32 frame magic 0x314d4643 ("CFM1")
 *   [4..8)   u32 body length (the records that follow)
 *   [8..12)  u32 record count
 *   [12..16) u32 CRC32 of [0..12)
 *
 * record, 32 + idLength (+ 8 + tagsLength for kind 3) + payloadLength bytes:
 *   [0..4)   u32 record length (all of it)
 *   [4..8)   u32 CRC32 of [8..length): everything after the checksum, id and payload included
 *   [8]      u8 kind (3 event with position and tags, 2 low-water mark; 1 event of format version 1,
 *            without position or tags, only read)
 *   [9]      u8 reserved (0)
 *   [10..12) u16 serializer id
 *   [12..14) u16 persistenceId length in UTF-8 bytes
 *   [14..16) u16 kind 3: byte length of the tags; otherwise reserved (0)
 *   [16..24) f64 sequenceNr (event) or low-water mark (entries below it are truncated)
 *   [24..32) f64 timestamp, ms since epoch
 *   then the persistenceId (UTF-8); kind 3: then f64 position in the journal's global order and the
 *   tags (each a u16 UTF-8 length and the bytes); then the payload
 *
 * The position is in the record, not the frame, because compaction regroups a segment's records by id:
 * it copies records verbatim, so their positions go with them.
 *
 * The id is written out in every record rather than as a reference to an earlier definition: ids are
 * short in practice (W1's are ~10 bytes against ~150 of payload) and a record that stands alone stays
 * readable after the segment that would have defined its id is deleted.
 */

export const SEGMENT_MAGIC = Buffer.from('CAIRNSEG', 'latin1');
export const FORMAT_VERSION = 2;
/** Segment format versions this build reads. */
const READABLE_VERSIONS = new Set([1, 2]);
export const SEGMENT_HEADER_SIZE = 32;
export const FRAME_MAGIC = 0x314d4643;
export const FRAME_HEADER_SIZE = 16;
export const RECORD_HEADER_SIZE = 32;

/** An event of format version 1: no position, no tags (read, never written). */
export const KIND_EVENT = 1;
export const KIND_LOW_WATER = 2;
/** An event with its position and tags. */
export const KIND_EVENT_POSITIONED = 3;
const POSITION_SIZE = 8;

export function isEventKind(kind: number): boolean {
  return kind === KIND_EVENT_POSITIONED || kind === KIND_EVENT;
}

/** A segment's file name: its number, zero-padded to 16 digits, so names sort as numbers do. */
export function segmentFileName(segment: number): string {
  return `${String(segment).padStart(16, '0')}.log`;
}

/** The sidecar index written when a segment is sealed. */
export function indexFileName(segment: number): string {
  return `${String(segment).padStart(16, '0')}.idx`;
}

/** The segment number of a file name like 0000000000000007.log, or undefined for other files. */
export function parseSegmentFileName(name: string): number | undefined {
  const match = /^(\d{16})\.log$/.exec(name);
  return match ? Number(match[1]) : undefined;
}

export function encodeSegmentHeader(segment: number): Buffer {
  const header = Buffer.alloc(SEGMENT_HEADER_SIZE);
  SEGMENT_MAGIC.copy(header, 0);
  header.writeUInt32LE(FORMAT_VERSION, 8);
  header.writeDoubleLE(segment, 16);
  header.writeUInt32LE(crc32(header.subarray(0, 28)), 28);
  return header;
}

/** Why a segment header is not acceptable, or undefined when it is. */
export function checkSegmentHeader(bytes: Uint8Array, segment: number): string | undefined {
  const header = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (header.length < SEGMENT_HEADER_SIZE) return `segment header is ${header.length} of 32 bytes`;
  if (!header.subarray(0, 8).equals(SEGMENT_MAGIC)) return 'not a Cairn segment (bad magic)';
  if (header.readUInt32LE(28) !== crc32(header.subarray(0, 28))) return 'segment header CRC mismatch';
  const version = header.readUInt32LE(8);
  if (!READABLE_VERSIONS.has(version)) {
    return `segment format version ${version} is not supported (this build reads versions ${[...READABLE_VERSIONS].join(' and ')})`;
  }
  const number = header.readDoubleLE(16);
  if (number !== segment) return `segment header says segment ${number}, the file name says ${segment}`;
  return undefined;
}

/** The format version in a segment header (already checked by checkSegmentHeader). */
export function segmentVersion(header: Uint8Array): number {
  return Buffer.from(header.buffer, header.byteOffset, header.byteLength).readUInt32LE(8);
}

/** An event as it goes into a frame. */
export interface EventToEncode {
  readonly sequenceNr: number;
  readonly timestamp: number;
  readonly serializerId: number;
  readonly payload: Uint8Array;
  readonly tags?: readonly string[];
}

/** One persistence id's contribution to a frame: events (consecutive sequenceNrs) or a low-water mark. */
export interface FramePart {
  readonly persistenceId: string;
  readonly events?: readonly EventToEncode[];
  /** Entries below this sequenceNr are truncated. */
  readonly lowWater?: number;
}

/** Where one part's records landed in an encoded frame. */
export interface EncodedPart {
  readonly persistenceId: string;
  /** Byte offset of the part's first record, from the start of the frame. */
  readonly offset: number;
  readonly byteLength: number;
}

export interface EncodedFrame {
  readonly bytes: Buffer;
  readonly parts: readonly EncodedPart[];
  /** Byte length of each event record, in order (the frame's bytes are handed to an IO thread). */
  readonly eventLengths: Uint32Array;
}

/** The UTF-8 bytes of an event's tags as a record holds them (each a u16 length and the bytes). */
function encodeTags(tags: readonly string[]): Buffer {
  const encoded = tags.map((t) => Buffer.from(t, 'utf8'));
  const bytes = Buffer.allocUnsafe(encoded.reduce((n, t) => n + 2 + t.length, 0));
  let at = 0;
  for (const t of encoded) {
    at = bytes.writeUInt16LE(t.length, at);
    at += t.copy(bytes, at);
  }
  return bytes;
}

/** The tags in `bytes[start, end)`. */
export function decodeTags(bytes: Uint8Array, start: number, end: number): string[] {
  const tags: string[] = [];
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = start;
  while (at < end) {
    const length = buffer.readUInt16LE(at);
    tags.push(buffer.toString('utf8', at + 2, at + 2 + length));
    at += 2 + length;
  }
  return tags;
}

/**
 * Encodes one frame holding every part's records; the events get positions `firstPosition`,
 * `firstPosition + 1`, ... in the order of the parts. Encoding and CRC run on the main thread: the
 * serializer already ran there, and one contiguous buffer is cheaper to hand to the IO worker (a
 * transfer, no copy) than many small payloads (see the README's measurements).
 */
export function encodeFrame(parts: readonly FramePart[], firstPosition: number): EncodedFrame {
  const ids = parts.map((p) => Buffer.from(p.persistenceId, 'utf8'));
  let size = FRAME_HEADER_SIZE;
  let count = 0;
  let tagged: Map<readonly string[], Buffer> | undefined;
  parts.forEach((part, i) => {
    const idLength = ids[i]!.length;
    if (part.events) {
      for (const e of part.events) {
        size += RECORD_HEADER_SIZE + idLength + POSITION_SIZE + e.payload.byteLength;
        if (e.tags && e.tags.length > 0) {
          // A batch's events share one tags array: encoded once.
          tagged ??= new Map();
          let bytes = tagged.get(e.tags);
          if (!bytes) {
            bytes = encodeTags(e.tags);
            tagged.set(e.tags, bytes);
          }
          size += bytes.length;
        }
      }
      count += part.events.length;
    }
    if (part.lowWater !== undefined) {
      size += RECORD_HEADER_SIZE + idLength;
      count++;
    }
  });
  // Not from the shared pool: the frame's ArrayBuffer is transferred to the IO worker whole.
  const bytes = Buffer.allocUnsafeSlow(size);
  const encoded: EncodedPart[] = [];
  const eventLengths = new Uint32Array(count);
  let events = 0;
  let at = FRAME_HEADER_SIZE;
  let position = firstPosition;
  parts.forEach((part, i) => {
    const id = ids[i]!;
    const start = at;
    for (const e of part.events ?? []) {
      const tags = e.tags && e.tags.length > 0 ? tagged!.get(e.tags) : undefined;
      const recordStart = at;
      at = writeEvent(bytes, at, e.serializerId, id, e.sequenceNr, e.timestamp, position++, tags, e.payload);
      eventLengths[events++] = at - recordStart;
    }
    if (part.lowWater !== undefined) {
      at = writeRecord(bytes, at, KIND_LOW_WATER, 0, id, part.lowWater, Date.now(), undefined);
    }
    encoded.push({ persistenceId: part.persistenceId, offset: start, byteLength: at - start });
  });
  bytes.writeUInt32LE(FRAME_MAGIC, 0);
  bytes.writeUInt32LE(size - FRAME_HEADER_SIZE, 4);
  bytes.writeUInt32LE(count, 8);
  bytes.writeUInt32LE(crc32(bytes.subarray(0, 12)), 12);
  return { bytes, parts: encoded, eventLengths };
}

function writeEvent(
  bytes: Buffer,
  at: number,
  serializerId: number,
  id: Buffer,
  sequenceNr: number,
  timestamp: number,
  position: number,
  tags: Buffer | undefined,
  payload: Uint8Array,
): number {
  const tagsLength = tags?.length ?? 0;
  const length = RECORD_HEADER_SIZE + id.length + POSITION_SIZE + tagsLength + payload.byteLength;
  bytes.writeUInt32LE(length, at);
  bytes.writeUInt8(KIND_EVENT_POSITIONED, at + 8);
  bytes.writeUInt8(0, at + 9);
  bytes.writeUInt16LE(serializerId, at + 10);
  bytes.writeUInt16LE(id.length, at + 12);
  bytes.writeUInt16LE(tagsLength, at + 14);
  bytes.writeDoubleLE(sequenceNr, at + 16);
  bytes.writeDoubleLE(timestamp, at + 24);
  let body = at + RECORD_HEADER_SIZE;
  body += id.copy(bytes, body);
  body = bytes.writeDoubleLE(position, body);
  if (tags) body += tags.copy(bytes, body);
  bytes.set(payload, body);
  bytes.writeUInt32LE(crc32Range(bytes, at + 8, at + length), at + 4);
  return at + length;
}

function isPositionValue(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 1;
}

/** Where an event record's payload starts (after the id, and for kind 3 the position and tags). */
export function payloadStart(bytes: Uint8Array, at: number, idLength: number): number {
  const body = at + RECORD_HEADER_SIZE + idLength;
  if (bytes[at + 8] !== KIND_EVENT_POSITIONED) return body;
  return body + POSITION_SIZE + (bytes[at + 14]! | (bytes[at + 15]! << 8));
}

/** A kind-3 event record's position (0 for a kind-1 record, which has none). */
export function recordPosition(bytes: Buffer, at: number, idLength: number): number {
  if (bytes[at + 8] !== KIND_EVENT_POSITIONED) return 0;
  return bytes.readDoubleLE(at + RECORD_HEADER_SIZE + idLength);
}

/** A kind-3 event record's tags (undefined when it has none). */
export function recordTags(bytes: Buffer, at: number, idLength: number): string[] | undefined {
  if (bytes[at + 8] !== KIND_EVENT_POSITIONED) return undefined;
  const tagsLength = bytes.readUInt16LE(at + 14);
  if (tagsLength === 0) return undefined;
  const start = at + RECORD_HEADER_SIZE + idLength + POSITION_SIZE;
  return decodeTags(bytes, start, start + tagsLength);
}

function writeRecord(
  bytes: Buffer,
  at: number,
  kind: number,
  serializerId: number,
  id: Buffer,
  sequenceNr: number,
  timestamp: number,
  payload: Uint8Array | undefined,
): number {
  const length = RECORD_HEADER_SIZE + id.length + (payload?.byteLength ?? 0);
  bytes.writeUInt32LE(length, at);
  bytes.writeUInt8(kind, at + 8);
  bytes.writeUInt8(0, at + 9);
  bytes.writeUInt16LE(serializerId, at + 10);
  bytes.writeUInt16LE(id.length, at + 12);
  bytes.writeUInt16LE(0, at + 14);
  bytes.writeDoubleLE(sequenceNr, at + 16);
  bytes.writeDoubleLE(timestamp, at + 24);
  id.copy(bytes, at + RECORD_HEADER_SIZE);
  if (payload) bytes.set(payload, at + RECORD_HEADER_SIZE + id.length);
  bytes.writeUInt32LE(crc32Range(bytes, at + 8, at + length), at + 4);
  return at + length;
}

/** A record read back and verified. */
export interface DecodedRecord {
  readonly length: number;
  readonly kind: number;
  readonly serializerId: number;
  /** The id ('' when decodeRecord was given the expected id: it matched). */
  readonly persistenceId: string;
  /** The event's sequenceNr, or the low-water mark. */
  readonly sequenceNr: number;
  readonly timestamp: number;
  readonly payload: Uint8Array;
  /** A kind-3 event's position in the global order; 0 for other records. */
  readonly position: number;
}

/** What could be read of a record that fails verification (its header fields are unverified). */
export interface BadRecord {
  readonly reason: string;
  /** The record length from its header, when it is plausible enough to step over the record. */
  readonly length?: number;
  readonly persistenceId?: string;
  readonly sequenceNr?: number;
}

/**
 * Decodes and verifies the record at `at`, which must end at or before `end`. Returns the record, or
 * what could be read of a bad one. The payload is a view into `bytes` (no copy). With `expectedId`
 * (the id's UTF-8 bytes), a record of another id is a bad record, and the id is compared as bytes
 * rather than decoded (the read path's hot loop).
 */
export function decodeRecord(
  bytes: Buffer,
  at: number,
  end: number,
  expectedId?: Buffer,
): DecodedRecord | BadRecord {
  if (end - at < RECORD_HEADER_SIZE) return { reason: `record header cut short (${end - at} bytes)` };
  const length = bytes.readUInt32LE(at);
  const idLength = bytes.readUInt16LE(at + 12);
  const plausible = length >= RECORD_HEADER_SIZE + idLength && at + length <= end;
  const kind = bytes[at + 8]!;
  // Read the header for the report even when the checksum fails: it names what was probably there.
  const sequenceNr = bytes.readDoubleLE(at + 16);
  const seqPlausible = Number.isSafeInteger(sequenceNr) && sequenceNr >= 1;
  const idStart = at + RECORD_HEADER_SIZE;
  const idText = () =>
    plausible && idLength > 0 ? bytes.toString('utf8', idStart, idStart + idLength) : undefined;
  if (!plausible) {
    return {
      reason: `record length ${length} does not fit (id ${idLength} bytes, ${end - at} bytes left in the frame)`,
      ...(seqPlausible ? { sequenceNr } : {}),
    };
  }
  if (bytes.readUInt32LE(at + 4) !== crc32Range(bytes, at + 8, at + length)) {
    return {
      reason: 'CRC mismatch',
      length,
      persistenceId: idText(),
      ...(seqPlausible ? { sequenceNr } : {}),
    };
  }
  const positioned = kind === KIND_EVENT_POSITIONED;
  const bodyPlausible =
    !positioned || length >= RECORD_HEADER_SIZE + idLength + POSITION_SIZE + bytes.readUInt16LE(at + 14);
  if (!isEventKind(kind) && kind !== KIND_LOW_WATER) {
    return {
      reason: `record fields invalid (kind ${kind}, sequenceNr ${sequenceNr})`,
      length,
      persistenceId: idText(),
    };
  }
  const positionPlausible =
    !positioned || !bodyPlausible || isPositionValue(bytes.readDoubleLE(at + RECORD_HEADER_SIZE + idLength));
  if (!seqPlausible || idLength === 0 || !bodyPlausible || !positionPlausible) {
    return {
      reason: `record fields invalid (kind ${kind}, sequenceNr ${sequenceNr})`,
      length,
      persistenceId: idText(),
    };
  }
  let persistenceId: string;
  if (expectedId) {
    if (
      idLength !== expectedId.length ||
      bytes.compare(expectedId, 0, idLength, idStart, idStart + idLength) !== 0
    ) {
      return { reason: `the record belongs to "${idText()}"`, length, persistenceId: idText(), sequenceNr };
    }
    persistenceId = '';
  } else {
    persistenceId = idText()!;
  }
  return {
    length,
    kind,
    serializerId: bytes.readUInt16LE(at + 10),
    persistenceId,
    sequenceNr,
    timestamp: bytes.readDoubleLE(at + 24),
    payload: bytes.subarray(payloadStart(bytes, at, idLength), at + length),
    position: recordPosition(bytes, at, idLength),
  };
}

/**
 * The read path's check of the record at `at`: its length when it is an intact event record of the id
 * whose UTF-8 bytes are `id`, numbered `sequenceNr`, and ends at or before `end`; otherwise -1, and
 * decodeRecord says why. Reads its fields in place (no record object, no views) since a replay runs it
 * once per event.
 */
export function intactEventLength(
  bytes: Buffer,
  at: number,
  end: number,
  id: Buffer,
  sequenceNr: number,
): number {
  if (end - at < RECORD_HEADER_SIZE) return -1;
  const length = (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0;
  const idLength = id.length;
  if (length < RECORD_HEADER_SIZE + idLength || at + length > end) return -1;
  const kind = bytes[at + 8];
  if (
    (kind !== KIND_EVENT_POSITIONED && kind !== KIND_EVENT) ||
    (kind === KIND_EVENT_POSITIONED &&
      length < RECORD_HEADER_SIZE + idLength + POSITION_SIZE + (bytes[at + 14]! | (bytes[at + 15]! << 8))) ||
    bytes[at + 12] !== (idLength & 0xff) ||
    bytes[at + 13] !== idLength >>> 8
  ) {
    return -1;
  }
  const stored =
    (bytes[at + 4]! | (bytes[at + 5]! << 8) | (bytes[at + 6]! << 16) | (bytes[at + 7]! << 24)) >>> 0;
  if (stored !== crc32Range(bytes, at + 8, at + length)) return -1;
  if (bytes.readDoubleLE(at + 16) !== sequenceNr) return -1;
  const idStart = at + RECORD_HEADER_SIZE;
  for (let i = 0; i < idLength; i++) if (bytes[idStart + i] !== id[i]) return -1;
  return length;
}

/** Why intactEventLength refused the record at `at`: the reason a read names in its corruption error. */
export function whyNotIntact(bytes: Buffer, at: number, end: number, id: Buffer, sequenceNr: number): string {
  const record = decodeRecord(bytes, at, end, id);
  if (isBadRecord(record)) return record.reason;
  if (!isEventKind(record.kind)) return `the index points at a record of kind ${record.kind}`;
  if (record.sequenceNr !== sequenceNr)
    return `found sequenceNr ${record.sequenceNr} where ${sequenceNr} belongs`;
  return 'bad record';
}

export function isBadRecord(r: DecodedRecord | BadRecord): r is BadRecord {
  return 'reason' in r;
}

/** The frame header at `at`, or why there is none. */
export function decodeFrameHeader(
  bytes: Buffer,
  at: number,
  end: number,
): { bodyLength: number; count: number } | { reason: string } {
  if (end - at < FRAME_HEADER_SIZE) return { reason: `frame header cut short (${end - at} bytes)` };
  if (bytes.readUInt32LE(at) !== FRAME_MAGIC) return { reason: 'no frame magic' };
  if (bytes.readUInt32LE(at + 12) !== crc32(bytes.subarray(at, at + 12))) {
    return { reason: 'frame header CRC mismatch' };
  }
  const bodyLength = bytes.readUInt32LE(at + 4);
  const count = bytes.readUInt32LE(at + 8);
  if (at + FRAME_HEADER_SIZE + bodyLength > end) {
    return { reason: `frame of ${bodyLength} bytes cut short at ${end - at - FRAME_HEADER_SIZE}` };
  }
  return { bodyLength, count };
}

/** A frame around records that are already encoded (compaction copies records verbatim). */
export function encodeRawFrame(records: readonly Uint8Array[]): Buffer {
  let size = FRAME_HEADER_SIZE;
  for (const r of records) size += r.byteLength;
  const bytes = Buffer.allocUnsafeSlow(size);
  let at = FRAME_HEADER_SIZE;
  for (const r of records) {
    bytes.set(r, at);
    at += r.byteLength;
  }
  bytes.writeUInt32LE(FRAME_MAGIC, 0);
  bytes.writeUInt32LE(size - FRAME_HEADER_SIZE, 4);
  bytes.writeUInt32LE(records.length, 8);
  bytes.writeUInt32LE(crc32(bytes.subarray(0, 12)), 12);
  return bytes;
}
