// actor-core's CRC32 module itself: this file also runs in IO threads, which need none of the rest.
import { crc32, crc32Range } from '@cairn/actor-core/dist/crc32';

/**
 * The bytes of a segment file (all integers little-endian):
 *
 * segment header, 32 bytes:
 *   [0..8)   magic "CAIRNSEG"
 *   [8..12)  u32 format version
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
 * record, 32 + idLength + payloadLength bytes:
 *   [0..4)   u32 record length (all of it)
 *   [4..8)   u32 CRC32 of [8..length): everything after the checksum, id and payload included
 *   [8]      u8 kind (1 event, 2 low-water mark)
 *   [9]      u8 reserved (0)
 *   [10..12) u16 serializer id
 *   [12..14) u16 persistenceId length in UTF-8 bytes
 *   [14..16) u16 reserved (0)
 *   [16..24) f64 sequenceNr (event) or low-water mark (entries below it are truncated)
 *   [24..32) f64 timestamp, ms since epoch
 *   then the persistenceId (UTF-8), then the payload
 *
 * The id is written out in every record rather than as a reference to an earlier definition: ids are
 * short in practice (W1's are ~10 bytes against ~150 of payload) and a record that stands alone stays
 * readable after the segment that would have defined its id is deleted.
 */

export const SEGMENT_MAGIC = Buffer.from('CAIRNSEG', 'latin1');
export const FORMAT_VERSION = 1;
export const SEGMENT_HEADER_SIZE = 32;
export const FRAME_MAGIC = 0x314d4643;
export const FRAME_HEADER_SIZE = 16;
export const RECORD_HEADER_SIZE = 32;

export const KIND_EVENT = 1;
export const KIND_LOW_WATER = 2;

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
  if (version !== FORMAT_VERSION) {
    return `segment format version ${version} is not supported (this build reads version ${FORMAT_VERSION})`;
  }
  const number = header.readDoubleLE(16);
  if (number !== segment) return `segment header says segment ${number}, the file name says ${segment}`;
  return undefined;
}

/** An event as it goes into a frame. */
export interface EventToEncode {
  readonly sequenceNr: number;
  readonly timestamp: number;
  readonly serializerId: number;
  readonly payload: Uint8Array;
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
}

/**
 * Encodes one frame holding every part's records. Encoding and CRC run on the main thread: the
 * serializer already ran there, and one contiguous buffer is cheaper to hand to the IO worker (a
 * transfer, no copy) than many small payloads (see the README's measurements).
 */
export function encodeFrame(parts: readonly FramePart[]): EncodedFrame {
  const ids = parts.map((p) => Buffer.from(p.persistenceId, 'utf8'));
  let size = FRAME_HEADER_SIZE;
  let count = 0;
  parts.forEach((part, i) => {
    const idLength = ids[i]!.length;
    if (part.events) {
      for (const e of part.events) size += RECORD_HEADER_SIZE + idLength + e.payload.byteLength;
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
  let at = FRAME_HEADER_SIZE;
  parts.forEach((part, i) => {
    const id = ids[i]!;
    const start = at;
    for (const e of part.events ?? []) {
      at = writeRecord(bytes, at, KIND_EVENT, e.serializerId, id, e.sequenceNr, e.timestamp, e.payload);
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
  return { bytes, parts: encoded };
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
  if ((kind !== KIND_EVENT && kind !== KIND_LOW_WATER) || !seqPlausible || idLength === 0) {
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
    payload: bytes.subarray(idStart + idLength, at + length),
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
  if (
    bytes[at + 8] !== KIND_EVENT ||
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
  if (record.kind !== KIND_EVENT) return `the index points at a record of kind ${record.kind}`;
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
