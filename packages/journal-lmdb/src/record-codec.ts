import { crc32, crc32Range, type StoredEvent, StoredEventInBuffer } from '@cairn/actor-core';

/*
 * The bytes Cairn stores in LMDB. Keys are raw binary (keyEncoding 'binary'), not lmdb-js's
 * ordered-binary arrays: ordered-binary writes strings of 64+ characters unescaped, so an id containing
 * U+0000 could produce keys inside another id's range. A length prefix cannot collide.
 *
 * Event and snapshot key:   u16 BE idLength | persistenceId (UTF-8) | u64 BE sequenceNr
 *   All keys of one id are contiguous and ordered by sequenceNr.
 *
 * Event value (version 1):  u32 LE crc | u8 version | u32 LE serializerId | f64 LE timestamp | payload
 *   crc = CRC-32 of the key bytes continued over every value byte after the crc, so a value copied under
 *   another key fails its check as surely as a flipped bit.
 *
 * Metadata keys:            0x00 "format"  -> u32 LE crc | u8 version | u32 LE formatVersion
 *                           0x01 persistenceId -> u32 LE crc | u8 version | f64 LE highest | f64 LE lowWater
 *   crc as above (key bytes, then the value after the crc). `lowWater`: every event below it is deleted
 *   or being deleted; reads never serve one.
 *
 * Snapshot value:           u32 LE crc | f64 LE timestamp | envelope (@cairn/snapshot)
 *   The prefix (crc over key + timestamp) lets `_list` filter by time without reading the envelope; the
 *   envelope carries its own checksums.
 */

/** The layout version this build writes into the metadata database and understands on open. */
export const LMDB_FORMAT_VERSION = 1;

const RECORD_VERSION = 1;
const EVENT_HEADER_BYTES = 17;
const META_ID_VALUE_BYTES = 21;
const META_FORMAT_VALUE_BYTES = 9;
export const SNAPSHOT_PREFIX_BYTES = 12;
const TAG_FORMAT = 0x00;
const TAG_ID = 0x01;
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

export function encodeEvent(key: Buffer, event: StoredEvent): Buffer {
  const out = Buffer.allocUnsafe(EVENT_HEADER_BYTES + event.payload.byteLength);
  out.writeUInt8(RECORD_VERSION, 4);
  out.writeUInt32LE(event.serializerId, 5);
  out.writeDoubleLE(event.timestamp, 9);
  out.set(event.payload, EVENT_HEADER_BYTES);
  out.writeUInt32LE(crc32Range(out, 4, out.length, crc32Range(key, 0, key.length)), 0);
  return out;
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

/**
 * Verifies and decodes an event value; returns the reason when it is not intact. The payload is copied
 * into `arena`, so `key` and `value` may be views into buffers reused right after the call.
 */
export function decodeEvent(
  key: Uint8Array,
  value: Uint8Array,
  sequenceNr: number,
  arena: PayloadArena,
): StoredEvent | string {
  const buf = asBuffer(value);
  if (buf.length < EVENT_HEADER_BYTES) {
    return `record of ${buf.length} bytes is shorter than its ${EVENT_HEADER_BYTES}-byte header`;
  }
  const stored = buf.readUInt32LE(0);
  const computed = crc32Range(buf, 4, buf.length, crc32Range(key, 0, key.length));
  if (stored !== computed) return `CRC mismatch (stored ${hex32(stored)}, computed ${hex32(computed)})`;
  const version = buf[4];
  if (version !== RECORD_VERSION) return `unknown record version ${version}`;
  const timestamp = buf.readDoubleLE(9);
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) return `invalid timestamp ${timestamp}`;
  const length = buf.length - EVENT_HEADER_BYTES;
  const at = arena.reserve(length);
  buf.copy(arena.bytes, at, EVENT_HEADER_BYTES);
  return new StoredEventInBuffer(sequenceNr, timestamp, buf.readUInt32LE(5), arena.bytes, at, at + length);
}

/** Per-id bookkeeping kept in the metadata database, never in the journal database. */
export interface IdMetadata {
  /** The highest sequenceNr ever committed. */
  readonly highest: number;
  /** Events below this are deleted (or being deleted); 0 when nothing was truncated. */
  readonly lowWater: number;
}

export const FORMAT_KEY: Buffer = Buffer.from([TAG_FORMAT, ...Buffer.from('format', 'latin1')]);
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
