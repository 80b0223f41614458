import { crc32, crc32Range, type StoredEvent, StoredEventInBuffer } from '@cairn/actor-core';

/*
 * The bytes Cairn stores in LMDB. Keys are raw binary (keyEncoding 'binary'), not lmdb-js's
 * ordered-binary arrays: ordered-binary writes strings of 64+ characters unescaped, so an id containing
 * U+0000 could produce keys inside another id's range. A length prefix cannot collide.
 *
 * Event and snapshot key:   u16 BE idLength | persistenceId (UTF-8) | u64 BE sequenceNr
 *   All keys of one id are contiguous and ordered by sequenceNr.
 *
 * Event value (version 2, written by format 2):
 *   u32 LE crc | u8 version | u32 LE serializerId | f64 LE timestamp | u64 BE position |
 *   u8 tagCount | tagCount x (u16 BE tagLength | tag (UTF-8)) | payload
 *   `position` is the event's place in the journal's global order (1, 2, 3, ...), assigned inside the
 *   write transaction that stores it, so every process writing the environment shares one order.
 * Event value (version 1, written by format 1; still read, never rewritten):
 *   u32 LE crc | u8 version | u32 LE serializerId | f64 LE timestamp | payload
 *   Its position lives in the `legacyPositions` database (assigned once by the format 1 -> 2 upgrade);
 *   its tags are [].
 *   crc (both versions) = CRC-32 of the key bytes continued over every value byte after the crc, so a
 *   value copied under another key fails its check as surely as a flipped bit.
 *
 * Index databases (format 2), every value being the event's journal key:
 *   positions:        u64 BE position                                  -> journal key
 *   tags:             u16 BE tagLength | tag (UTF-8) | u64 BE position -> journal key
 *   legacyPositions:  journal key of a version-1 record                -> u64 BE position
 *
 * Metadata keys:            0x00 "format"  -> u32 LE crc | u8 version | u32 LE formatVersion
 *                           0x00 "head"    -> u32 LE crc | u8 version | f64 LE last assigned position
 *                           0x00 "journal-id" -> u32 LE crc | u8 version | 8 random bytes (offsets carry
 *                                             them, so an offset of another journal is refused)
 *                           0x01 persistenceId -> u32 LE crc | u8 version | f64 LE highest | f64 LE lowWater
 *                           0x02 persistenceId -> u32 LE crc | u8 version | f64 LE bound
 *   crc as above (key bytes, then the value after the crc). `lowWater`: every event below it is deleted
 *   or being deleted; reads never serve one. A 0x02 record marks a truncation whose deletes (spread over
 *   several transactions) are not finished: the index databases may still hold that id's events below
 *   `bound`, and index reads skip them.
 *
 * Offsets database (projections; the value is always u32 LE crc | u8 version | UTF-8 text):
 *                           0x01 projection name (UTF-8) -> its offset
 *                           0x02 projection name         -> its status record (opaque to the store)
 *                           0x03 projection name         -> its lock record (JSON: who holds it)
 *
 * Snapshot value:           u32 LE crc | f64 LE timestamp | envelope (@cairn/snapshot)
 *   The prefix (crc over key + timestamp) lets `_list` filter by time without reading the envelope; the
 *   envelope carries its own checksums.
 */

/**
 * The layout version this build writes into the metadata database and understands on open. 2 added the
 * global order (positions, the head counter, the index databases) and tags; a build that knows only 1
 * refuses a format-2 environment, so it can never write events the indexes would miss.
 */
export const LMDB_FORMAT_VERSION = 2;
/** The format before the global order; upgraded in place on the first writable open. */
export const LMDB_FORMAT_VERSION_UNORDERED = 1;

const RECORD_VERSION = 1;
const EVENT_VERSION_UNORDERED = 1;
const EVENT_VERSION = 2;
const EVENT_V1_HEADER_BYTES = 17;
/** crc, version, serializerId, timestamp, position, tagCount. */
const EVENT_HEADER_BYTES = 26;
const EVENT_POSITION_AT = 17;
const META_ID_VALUE_BYTES = 21;
const META_FORMAT_VALUE_BYTES = 9;
const META_NUMBER_VALUE_BYTES = 13;
const OFFSET_VALUE_HEADER_BYTES = 5;
export const SNAPSHOT_PREFIX_BYTES = 12;
const TAG_FORMAT = 0x00;
const TAG_ID = 0x01;
const TAG_TRUNCATING = 0x02;
const TWO_POW_32 = 0x1_0000_0000;

/** The id part every key of `persistenceId` starts with. */
export function idPrefix(persistenceId: string): Buffer {
  const length = Buffer.byteLength(persistenceId, 'utf8');
  const out = Buffer.allocUnsafe(2 + length);
  out.writeUInt16BE(length, 0);
  out.write(persistenceId, 2, length, 'utf8');
  return out;
}

/** The key of `persistenceId`'s entry at `sequenceNr`, given the id's prefix. */
export function entryKey(prefix: Buffer, sequenceNr: number): Buffer {
  const out = Buffer.allocUnsafe(prefix.length + 8);
  prefix.copy(out, 0);
  out.writeUInt32BE(Math.floor(sequenceNr / TWO_POW_32), prefix.length);
  out.writeUInt32BE(sequenceNr >>> 0, prefix.length + 4);
  return out;
}

/** A key above every entry key of the id (exclusive end of its range). */
export function entryKeyEnd(prefix: Buffer): Buffer {
  const out = Buffer.alloc(prefix.length + 9, 0xff);
  prefix.copy(out, 0);
  return out;
}

export interface DecodedEntryKey {
  readonly persistenceId: string;
  readonly sequenceNr: number;
}

/** Splits an entry key; undefined when it is not a well-formed one. */
export function decodeEntryKey(key: Uint8Array): DecodedEntryKey | undefined {
  const buf = asBuffer(key);
  if (buf.length < 11) return undefined;
  const length = buf.readUInt16BE(0);
  if (buf.length !== length + 10) return undefined;
  const high = buf.readUInt32BE(2 + length);
  const low = buf.readUInt32BE(6 + length);
  const sequenceNr = high * TWO_POW_32 + low;
  if (!Number.isSafeInteger(sequenceNr)) return undefined;
  return { persistenceId: buf.toString('utf8', 2, 2 + length), sequenceNr };
}

/** The sequenceNr of an entry key whose id prefix is known to be `prefixLength` bytes. */
export function sequenceNrOf(key: Uint8Array, prefixLength: number): number {
  const buf = asBuffer(key);
  return buf.readUInt32BE(prefixLength) * TWO_POW_32 + buf.readUInt32BE(prefixLength + 4);
}

/** An 8-byte big-endian position: sorts like the number. */
export function positionKey(position: number): Buffer {
  const out = Buffer.allocUnsafe(8);
  writePosition(out, 0, position);
  return out;
}

/** The position in an 8-byte big-endian key or field at `at`. */
export function readPosition(bytes: Uint8Array, at = 0): number {
  const buf = asBuffer(bytes);
  return buf.readUInt32BE(at) * TWO_POW_32 + buf.readUInt32BE(at + 4);
}

function writePosition(out: Buffer, at: number, position: number): void {
  out.writeUInt32BE(Math.floor(position / TWO_POW_32), at);
  out.writeUInt32BE(position >>> 0, at + 4);
}

/** The part every tag-index key of `tag` starts with. */
export function tagPrefix(tag: string): Buffer {
  return idPrefix(tag);
}

/** The tag-index key of `tag` (given its prefix) at `position`. */
export function tagKey(prefix: Buffer, position: number): Buffer {
  return entryKey(prefix, position);
}

/** A key above every tag-index key of the tag (exclusive end of its range). */
export function tagKeyEnd(prefix: Buffer): Buffer {
  return entryKeyEnd(prefix);
}

/**
 * Encodes an event record (version 2) at `position`. Inside a write transaction the journal encodes with
 * position 0 first (outside the writer lock) and then calls stampPosition once the position is known.
 */
export function encodeEvent(
  key: Buffer,
  event: StoredEvent,
  tags: readonly string[] = [],
  position = 0,
): Buffer {
  let tagBytes = 0;
  for (const tag of tags) tagBytes += 2 + Buffer.byteLength(tag, 'utf8');
  const payloadAt = EVENT_HEADER_BYTES + tagBytes;
  const out = Buffer.allocUnsafe(payloadAt + event.payload.byteLength);
  out.writeUInt8(EVENT_VERSION, 4);
  out.writeUInt32LE(event.serializerId, 5);
  out.writeDoubleLE(event.timestamp, 9);
  out.writeUInt8(tags.length, EVENT_HEADER_BYTES - 1);
  let at = EVENT_HEADER_BYTES;
  for (const tag of tags) {
    const length = out.write(tag, at + 2, 'utf8');
    out.writeUInt16BE(length, at);
    at += 2 + length;
  }
  out.set(event.payload, payloadAt);
  stampPosition(key, out, position);
  return out;
}

/** Sets the position of a version-2 record made by encodeEvent, and its crc. */
export function stampPosition(key: Buffer, record: Buffer, position: number): void {
  writePosition(record, EVENT_POSITION_AT, position);
  record.writeUInt32LE(crc32Range(record, 4, record.length, crc32Range(key, 0, key.length)), 0);
}

/**
 * Where decodeEvent copies payloads out of lmdb-js's reused read buffers: one buffer holds many, so a
 * page of events costs a few allocations instead of one each, and the core decodes them in place.
 */
export class PayloadArena {
  bytes: Buffer = Buffer.allocUnsafeSlow(0);
  private used = 0;

  /** The offset in `bytes` of `length` fresh bytes (starting a new buffer when the current one is full). */
  reserve(length: number): number {
    if (this.used + length > this.bytes.length) {
      // Doubling from small: a recovery reads a few events per id, a replay millions.
      const size = Math.min(ARENA_MAX_BYTES, Math.max(ARENA_FIRST_BYTES, this.bytes.length * 2));
      this.bytes = Buffer.allocUnsafeSlow(Math.max(size, length));
      this.used = 0;
    }
    const at = this.used;
    this.used += length;
    return at;
  }
}

const ARENA_FIRST_BYTES = 2048;
const ARENA_MAX_BYTES = 64 * 1024;

/** A stored event as read from LMDB, with its place in the global order besides. */
export class LmdbStoredEvent extends StoredEventInBuffer {
  constructor(
    sequenceNr: number,
    timestamp: number,
    serializerId: number,
    bytes: Uint8Array,
    start: number,
    end: number,
    /** The position in the global order; 0 for a version-1 record (looked up in legacyPositions). */
    public position: number,
    tags: readonly string[] | undefined,
  ) {
    super(sequenceNr, timestamp, serializerId, bytes, start, end, tags);
  }
}

/**
 * Verifies and decodes an event value (version 1 or 2); returns the reason when it is not intact. The
 * payload is copied into `arena`, so `key` and `value` may be views into buffers reused right after the
 * call.
 */
export function decodeEvent(
  key: Uint8Array,
  value: Uint8Array,
  sequenceNr: number,
  arena: PayloadArena,
): LmdbStoredEvent | string {
  const buf = asBuffer(value);
  if (buf.length < EVENT_V1_HEADER_BYTES) {
    return `record of ${buf.length} bytes is shorter than its ${EVENT_V1_HEADER_BYTES}-byte header`;
  }
  const stored = buf.readUInt32LE(0);
  const computed = crc32Range(buf, 4, buf.length, crc32Range(key, 0, key.length));
  if (stored !== computed) return `CRC mismatch (stored ${hex32(stored)}, computed ${hex32(computed)})`;
  const version = buf[4];
  let payloadAt = EVENT_V1_HEADER_BYTES;
  let position = 0;
  let tags: string[] | undefined;
  if (version === EVENT_VERSION) {
    if (buf.length < EVENT_HEADER_BYTES) {
      return `record of ${buf.length} bytes is shorter than its ${EVENT_HEADER_BYTES}-byte header`;
    }
    position = readPosition(buf, EVENT_POSITION_AT);
    const count = buf[EVENT_HEADER_BYTES - 1]!;
    payloadAt = EVENT_HEADER_BYTES;
    if (count > 0) {
      const list: string[] = [];
      for (let i = 0; i < count; i++) {
        if (payloadAt + 2 > buf.length) return `tag ${i} of ${count} runs past the record's end`;
        const length = buf.readUInt16BE(payloadAt);
        if (payloadAt + 2 + length > buf.length) return `tag ${i} of ${count} runs past the record's end`;
        list.push(buf.toString('utf8', payloadAt + 2, payloadAt + 2 + length));
        payloadAt += 2 + length;
      }
      tags = list;
    }
  } else if (version !== EVENT_VERSION_UNORDERED) {
    return `unknown record version ${version}`;
  }
  const timestamp = buf.readDoubleLE(9);
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) return `invalid timestamp ${timestamp}`;
  const length = buf.length - payloadAt;
  const at = arena.reserve(length);
  buf.copy(arena.bytes, at, payloadAt);
  return new LmdbStoredEvent(
    sequenceNr,
    timestamp,
    buf.readUInt32LE(5),
    arena.bytes,
    at,
    at + length,
    position,
    tags,
  );
}

/**
 * The position and tags of an intact event value, without its payload (truncation needs them to find the
 * event's index entries); the reason when it is not intact. Position 0: a version-1 record.
 */
export function eventIndexEntries(
  key: Uint8Array,
  value: Uint8Array,
  arena: PayloadArena,
): { position: number; tags: readonly string[] } | string {
  const decoded = decodeEvent(key, value, 0, arena);
  return typeof decoded === 'string' ? decoded : { position: decoded.position, tags: decoded.tags ?? [] };
}

/** Per-id bookkeeping kept in the metadata database, never in the journal database. */
export interface IdMetadata {
  /** The highest sequenceNr ever committed. */
  readonly highest: number;
  /** Events below this are deleted (or being deleted); 0 when nothing was truncated. */
  readonly lowWater: number;
}

export const FORMAT_KEY: Buffer = Buffer.from([TAG_FORMAT, ...Buffer.from('format', 'latin1')]);
/** The last position assigned (the global order's counter); absent until the first format-2 write. */
export const HEAD_KEY: Buffer = Buffer.from([TAG_FORMAT, ...Buffer.from('head', 'latin1')]);
/** The journal's random id, created with its format-2 metadata. */
export const JOURNAL_ID_KEY: Buffer = Buffer.from([TAG_FORMAT, ...Buffer.from('journal-id', 'latin1')]);
const JOURNAL_ID_BYTES = 8;

/** The journal id record: the id is 16 lowercase hex digits (8 bytes). */
export function encodeJournalId(id: string): Buffer {
  const out = Buffer.allocUnsafe(5 + JOURNAL_ID_BYTES);
  out.writeUInt8(RECORD_VERSION, 4);
  out.write(id, 5, JOURNAL_ID_BYTES, 'hex');
  out.writeUInt32LE(crc32(out.subarray(4), crc32(JOURNAL_ID_KEY)), 0);
  return out;
}

/** The journal id of a record made by encodeJournalId, or the reason (as `{ reason }`) it is not intact. */
export function decodeJournalId(value: Uint8Array): string | { reason: string } {
  const buf = asBuffer(value);
  if (buf.length !== 5 + JOURNAL_ID_BYTES) return { reason: `journal id record of ${buf.length} bytes` };
  const stored = buf.readUInt32LE(0);
  const computed = crc32(buf.subarray(4), crc32(JOURNAL_ID_KEY));
  if (stored !== computed)
    return { reason: `CRC mismatch (stored ${hex32(stored)}, computed ${hex32(computed)})` };
  return buf.toString('hex', 5);
}

/** Bounds of the per-id metadata keys. */
export const ID_KEYS_START: Buffer = Buffer.from([TAG_ID]);
export const ID_KEYS_END: Buffer = Buffer.from([TAG_ID + 1]);

export function metadataKey(persistenceId: string): Buffer {
  const length = Buffer.byteLength(persistenceId, 'utf8');
  const out = Buffer.allocUnsafe(1 + length);
  out[0] = TAG_ID;
  out.write(persistenceId, 1, length, 'utf8');
  return out;
}

/** The key marking an unfinished truncation of `persistenceId`. */
export function truncatingKey(persistenceId: string): Buffer {
  const key = metadataKey(persistenceId);
  key[0] = TAG_TRUNCATING;
  return key;
}

/** Bounds of the unfinished-truncation keys. */
export const TRUNCATING_KEYS_START: Buffer = Buffer.from([TAG_TRUNCATING]);
export const TRUNCATING_KEYS_END: Buffer = Buffer.from([TAG_TRUNCATING + 1]);

/** The persistenceId of a per-id metadata key. */
export function idOfMetadataKey(key: Uint8Array): string {
  return asBuffer(key).toString('utf8', 1);
}

export function encodeIdMetadata(key: Buffer, meta: IdMetadata): Buffer {
  const out = Buffer.allocUnsafe(META_ID_VALUE_BYTES);
  out.writeUInt8(RECORD_VERSION, 4);
  out.writeDoubleLE(meta.highest, 5);
  out.writeDoubleLE(meta.lowWater, 13);
  out.writeUInt32LE(crc32(out.subarray(4), crc32(key)), 0);
  return out;
}

export function decodeIdMetadata(key: Uint8Array, value: Uint8Array): IdMetadata | string {
  const buf = asBuffer(value);
  if (buf.length !== META_ID_VALUE_BYTES)
    return `metadata of ${buf.length} bytes, expected ${META_ID_VALUE_BYTES}`;
  const stored = buf.readUInt32LE(0);
  const computed = crc32Range(buf, 4, buf.length, crc32Range(key, 0, key.length));
  if (stored !== computed) return `CRC mismatch (stored ${hex32(stored)}, computed ${hex32(computed)})`;
  if (buf.readUInt8(4) !== RECORD_VERSION) return `unknown metadata version ${buf.readUInt8(4)}`;
  const highest = buf.readDoubleLE(5);
  const lowWater = buf.readDoubleLE(13);
  if (!Number.isSafeInteger(highest) || highest < 0 || !Number.isSafeInteger(lowWater) || lowWater < 0) {
    return `invalid numbers (highest ${highest}, lowWater ${lowWater})`;
  }
  return { highest, lowWater };
}

/** A checked number record (the head counter, a truncation bound) under `key`. */
export function encodeNumber(key: Buffer, value: number): Buffer {
  const out = Buffer.allocUnsafe(META_NUMBER_VALUE_BYTES);
  out.writeUInt8(RECORD_VERSION, 4);
  out.writeDoubleLE(value, 5);
  out.writeUInt32LE(crc32(out.subarray(4), crc32(key)), 0);
  return out;
}

/** The number of a record made by encodeNumber, or the reason it is not intact. */
export function decodeNumber(key: Uint8Array, value: Uint8Array): number | string {
  const buf = asBuffer(value);
  if (buf.length !== META_NUMBER_VALUE_BYTES)
    return `record of ${buf.length} bytes, expected ${META_NUMBER_VALUE_BYTES}`;
  const stored = buf.readUInt32LE(0);
  const computed = crc32Range(buf, 4, buf.length, crc32Range(key, 0, key.length));
  if (stored !== computed) return `CRC mismatch (stored ${hex32(stored)}, computed ${hex32(computed)})`;
  if (buf.readUInt8(4) !== RECORD_VERSION) return `unknown record version ${buf.readUInt8(4)}`;
  const number = buf.readDoubleLE(5);
  if (!Number.isSafeInteger(number) || number < 0) return `invalid number ${number}`;
  return number;
}

/** What an offsets-database key holds about its projection. */
export const PROJECTION_OFFSET = 0x01;
export const PROJECTION_STATUS = 0x02;
export const PROJECTION_LOCK = 0x03;

/** The offsets-database key of a projection's offset, status or lock record. */
export function projectionKey(
  kind: typeof PROJECTION_OFFSET | typeof PROJECTION_STATUS | typeof PROJECTION_LOCK,
  projectionName: string,
): Buffer {
  const length = Buffer.byteLength(projectionName, 'utf8');
  const out = Buffer.allocUnsafe(1 + length);
  out[0] = kind;
  out.write(projectionName, 1, length, 'utf8');
  return out;
}

/** The offsets-database key of a projection's offset. */
export function offsetKey(projectionName: string): Buffer {
  return projectionKey(PROJECTION_OFFSET, projectionName);
}

/** A projection's saved offset (or status or lock record), checked like every other record. */
export function encodeOffset(key: Buffer, offset: string): Buffer {
  const length = Buffer.byteLength(offset, 'utf8');
  const out = Buffer.allocUnsafe(OFFSET_VALUE_HEADER_BYTES + length);
  out.writeUInt8(RECORD_VERSION, 4);
  out.write(offset, OFFSET_VALUE_HEADER_BYTES, length, 'utf8');
  out.writeUInt32LE(crc32(out.subarray(4), crc32(key)), 0);
  return out;
}

/** The offset of a record made by encodeOffset, or the reason it is not intact (as `{ reason }`). */
export function decodeOffset(key: Uint8Array, value: Uint8Array): string | { reason: string } {
  const buf = asBuffer(value);
  if (buf.length < OFFSET_VALUE_HEADER_BYTES) return { reason: `record of ${buf.length} bytes` };
  const stored = buf.readUInt32LE(0);
  const computed = crc32Range(buf, 4, buf.length, crc32Range(key, 0, key.length));
  if (stored !== computed)
    return { reason: `CRC mismatch (stored ${hex32(stored)}, computed ${hex32(computed)})` };
  if (buf.readUInt8(4) !== RECORD_VERSION) return { reason: `unknown record version ${buf.readUInt8(4)}` };
  return buf.toString('utf8', OFFSET_VALUE_HEADER_BYTES);
}

export function encodeFormat(version: number): Buffer {
  const out = Buffer.allocUnsafe(META_FORMAT_VALUE_BYTES);
  out.writeUInt8(RECORD_VERSION, 4);
  out.writeUInt32LE(version, 5);
  out.writeUInt32LE(crc32(out.subarray(4), crc32(FORMAT_KEY)), 0);
  return out;
}

export function decodeFormat(value: Uint8Array): number | string {
  const buf = asBuffer(value);
  if (buf.length !== META_FORMAT_VALUE_BYTES) return `format record of ${buf.length} bytes`;
  const stored = buf.readUInt32LE(0);
  const computed = crc32(buf.subarray(4), crc32(FORMAT_KEY));
  if (stored !== computed)
    return `format record CRC mismatch (stored ${hex32(stored)}, computed ${hex32(computed)})`;
  return buf.readUInt32LE(5);
}

/** The value stored for a snapshot: a checked timestamp prefix, then the envelope. */
export function encodeSnapshotValue(key: Buffer, timestamp: number, envelope: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(SNAPSHOT_PREFIX_BYTES + envelope.byteLength);
  out.writeDoubleLE(timestamp, 4);
  out.writeUInt32LE(crc32(out.subarray(4, SNAPSHOT_PREFIX_BYTES), crc32(key)), 0);
  out.set(envelope, SNAPSHOT_PREFIX_BYTES);
  return out;
}

/** The timestamp of a snapshot value, or the reason its prefix is not intact. */
export function snapshotTimestamp(key: Uint8Array, value: Uint8Array): number | string {
  const buf = asBuffer(value);
  if (buf.length < SNAPSHOT_PREFIX_BYTES) return `value of ${buf.length} bytes has no timestamp prefix`;
  const stored = buf.readUInt32LE(0);
  const computed = crc32(buf.subarray(4, SNAPSHOT_PREFIX_BYTES), crc32(key));
  if (stored !== computed) {
    return `timestamp prefix CRC mismatch (stored ${hex32(stored)}, computed ${hex32(computed)}): not a Cairn LMDB snapshot record, or corrupted`;
  }
  const timestamp = buf.readDoubleLE(4);
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) return `invalid timestamp ${timestamp}`;
  return timestamp;
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function hex32(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`;
}

/** A printable form of a binary key for error messages: `persistenceId#sequenceNr` plus the hex bytes. */
export function describeEntryKey(key: Uint8Array): string {
  const decoded = decodeEntryKey(key);
  const hex = Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('hex');
  return decoded ? `${decoded.persistenceId}#${decoded.sequenceNr} (0x${hex})` : `0x${hex}`;
}
