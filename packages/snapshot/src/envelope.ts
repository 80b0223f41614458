import {
  crc32,
  MAX_PERSISTENCE_ID_BYTES,
  SnapshotCorruptedError,
  type StoredSnapshot,
} from '@cairn/actor-core';

/**
 * The version of the snapshot envelope this build writes and reads. A reader meeting a higher version
 * refuses it (it cannot know that layout) rather than guessing.
 */
export const SNAPSHOT_FORMAT_VERSION = 1;

/**
 * The first bytes of every envelope: 0x89 then "CSN" (Cairn SNapshot). The high first byte, as in PNG,
 * makes data mangled by a 7-bit or text-mode transfer fail at once instead of at the checksum.
 */
export const SNAPSHOT_MAGIC: Readonly<Uint8Array> = Uint8Array.of(0x89, 0x43, 0x53, 0x4e);

/*
 * Layout of version 1 (all integers big-endian, offsets in bytes, L = id length, P = payload length):
 *
 *   0   4  magic            0x89 'C' 'S' 'N'
 *   4   2  version          1
 *   6   2  flags            0 (reserved: a reader refuses any other value)
 *   8   4  serializerId     u32
 *  12   4  idLength         u32, 1..MAX_PERSISTENCE_ID_BYTES
 *  16   8  sequenceNr       u64, 1..Number.MAX_SAFE_INTEGER
 *  24   8  timestamp        u64, ms since the epoch, 0..Number.MAX_SAFE_INTEGER
 *  32   4  payloadLength    u32
 *  36   L  persistenceId    UTF-8
 *  36+L 4  headerCrc        CRC-32 of bytes [0, 36+L)
 *  40+L P  payload          the state as the serializer encoded it
 *  40+L+P 4 crc             CRC-32 of bytes [0, 40+L+P): everything before it
 *
 * Why two checksums: the header CRC vouches for the persistenceId and sequenceNr on its own, so a
 * payload corrupted on disk is reported with the id and sequenceNr it belongs to (and the payload's
 * offset), while a corrupt header is reported as such instead of naming a garbled id.
 */
const OFFSET_VERSION = 4;
const OFFSET_FLAGS = 6;
const OFFSET_SERIALIZER_ID = 8;
const OFFSET_ID_LENGTH = 12;
const OFFSET_SEQUENCE_NR = 16;
const OFFSET_TIMESTAMP = 24;
const OFFSET_PAYLOAD_LENGTH = 32;
const FIXED_HEADER_BYTES = 36;
const CRC_BYTES = 4;
/** The fixed part plus both checksums: an envelope is this many bytes plus the id and payload. */
export const SNAPSHOT_ENVELOPE_OVERHEAD = FIXED_HEADER_BYTES + 2 * CRC_BYTES;
const MAX_U32 = 0xffff_ffff;

const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Encodes a snapshot into one self-checking byte string: magic, version, persistenceId, sequenceNr,
 * timestamp, serializer id, payload, and a CRC-32 over everything before it (plus a header CRC, see the
 * layout above). The result owns its whole ArrayBuffer (never a slice of Node's shared pool), so it can be
 * transferred to a worker thread without a copy.
 *
 * @throws TypeError or RangeError when a field cannot be represented (empty or over-long id, sequenceNr
 *   < 1, a non-integer, a payload of 4 GiB or more); nothing is encoded then.
 */
export function encodeSnapshotEnvelope(snapshot: StoredSnapshot): Buffer {
  const { persistenceId, sequenceNr, timestamp, serializerId, payload } = snapshot;
  if (typeof persistenceId !== 'string' || persistenceId.length === 0) {
    throw new TypeError('snapshot envelope: persistenceId must be a non-empty string');
  }
  if (!persistenceId.isWellFormed()) {
    throw new TypeError('snapshot envelope: persistenceId must be well-formed unicode (no lone surrogates)');
  }
  checkInteger(sequenceNr, 'sequenceNr', 1, Number.MAX_SAFE_INTEGER);
  checkInteger(timestamp, 'timestamp', 0, Number.MAX_SAFE_INTEGER);
  checkInteger(serializerId, 'serializerId', 0, MAX_U32);
  if (!(payload instanceof Uint8Array))
    throw new TypeError('snapshot envelope: payload must be a Uint8Array');
  if (payload.byteLength > MAX_U32) {
    throw new RangeError(`snapshot envelope: payload of ${payload.byteLength} bytes exceeds 4 GiB - 1`);
  }
  const idLength = Buffer.byteLength(persistenceId, 'utf8');
  if (idLength > MAX_PERSISTENCE_ID_BYTES) {
    throw new RangeError(
      `snapshot envelope: persistenceId must be at most ${MAX_PERSISTENCE_ID_BYTES} bytes`,
    );
  }

  const headerCrcAt = FIXED_HEADER_BYTES + idLength;
  const payloadAt = headerCrcAt + CRC_BYTES;
  const crcAt = payloadAt + payload.byteLength;
  // allocUnsafeSlow: never a slice of the shared pool, so callers may transfer the ArrayBuffer.
  const out = Buffer.allocUnsafeSlow(crcAt + CRC_BYTES);
  out.set(SNAPSHOT_MAGIC, 0);
  out.writeUInt16BE(SNAPSHOT_FORMAT_VERSION, OFFSET_VERSION);
  out.writeUInt16BE(0, OFFSET_FLAGS);
  out.writeUInt32BE(serializerId, OFFSET_SERIALIZER_ID);
  out.writeUInt32BE(idLength, OFFSET_ID_LENGTH);
  out.writeBigUInt64BE(BigInt(sequenceNr), OFFSET_SEQUENCE_NR);
  out.writeBigUInt64BE(BigInt(timestamp), OFFSET_TIMESTAMP);
  out.writeUInt32BE(payload.byteLength, OFFSET_PAYLOAD_LENGTH);
  out.write(persistenceId, FIXED_HEADER_BYTES, idLength, 'utf8');
  out.writeUInt32BE(crc32(out.subarray(0, headerCrcAt)), headerCrcAt);
  out.set(payload, payloadAt);
  out.writeUInt32BE(crc32(out.subarray(0, crcAt)), crcAt);
  return out;
}

/** Where an envelope was read from: a file (offsets are reported as file offsets) or a database key. */
export type EnvelopeSource = { readonly file: string } | { readonly key: string };

/**
 * Decodes and verifies an envelope written by `encodeSnapshotEnvelope`: magic, version, flags, lengths,
 * the header CRC, the trailing CRC, and the range of every number.
 *
 * The returned `payload` is a view into `bytes` (no copy): do not reuse `bytes` while it is in use.
 *
 * @param where names the source in the error: `{ file }` (the error gets `file` and the byte `offset` of
 *   the bad field or checked range) or `{ key }` (the offset is given in the reason).
 * @throws SnapshotCorruptedError naming `where`, the persistenceId and sequenceNr once the header has
 *   verified, and the reason. Data without the magic (for instance an older, checksum-less snapshot
 *   format) fails with a reason saying it is not a Cairn v1 envelope: such snapshots are refused by design,
 *   take fresh ones.
 */
export function decodeSnapshotEnvelope(bytes: Uint8Array, where: EnvelopeSource): StoredSnapshot {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let identity: { persistenceId?: string; sequenceNr?: number } = {};
  const fail = (offset: number, reason: string): never => {
    throw corrupted(where, offset, reason, identity);
  };

  if (buf.length < SNAPSHOT_MAGIC.length || !SNAPSHOT_MAGIC.every((b, i) => buf[i] === b)) {
    const shown = buf.subarray(0, SNAPSHOT_MAGIC.length).toString('hex') || 'nothing';
    fail(
      0,
      `not a Cairn v1 snapshot envelope (starts with 0x${shown}, expected 0x${Buffer.from(SNAPSHOT_MAGIC).toString('hex')}): ` +
        'snapshots in an older, checksum-less format are refused by design; take a fresh snapshot',
    );
  }
  if (buf.length < FIXED_HEADER_BYTES) {
    fail(buf.length, `truncated: ${buf.length} bytes, shorter than the ${FIXED_HEADER_BYTES}-byte header`);
  }
  const version = buf.readUInt16BE(OFFSET_VERSION);
  if (version !== SNAPSHOT_FORMAT_VERSION) {
    fail(
      OFFSET_VERSION,
      version > SNAPSHOT_FORMAT_VERSION
        ? `format version ${version} is newer than this build reads (${SNAPSHOT_FORMAT_VERSION}): written by a newer Cairn, or corrupted`
        : `invalid format version ${version}`,
    );
  }
  const flags = buf.readUInt16BE(OFFSET_FLAGS);
  if (flags !== 0) fail(OFFSET_FLAGS, `unknown flags 0x${flags.toString(16)} (version 1 defines none)`);
  const idLength = buf.readUInt32BE(OFFSET_ID_LENGTH);
  if (idLength < 1 || idLength > MAX_PERSISTENCE_ID_BYTES) {
    fail(OFFSET_ID_LENGTH, `persistenceId length ${idLength} is outside 1..${MAX_PERSISTENCE_ID_BYTES}`);
  }
  const headerCrcAt = FIXED_HEADER_BYTES + idLength;
  const payloadAt = headerCrcAt + CRC_BYTES;
  if (buf.length < payloadAt) {
    fail(buf.length, `truncated: ${buf.length} bytes, the header with its checksum needs ${payloadAt}`);
  }
  const storedHeaderCrc = buf.readUInt32BE(headerCrcAt);
  const headerCrc = crc32(buf.subarray(0, headerCrcAt));
  if (storedHeaderCrc !== headerCrc) {
    fail(
      0,
      `header CRC mismatch over bytes 0..${headerCrcAt} (stored ${hex32(storedHeaderCrc)}, computed ${hex32(headerCrc)})`,
    );
  }

  // The header verified: its fields are what the writer wrote, so name them from here on.
  let persistenceId: string;
  try {
    persistenceId = utf8Decoder.decode(buf.subarray(FIXED_HEADER_BYTES, headerCrcAt));
  } catch {
    return fail(FIXED_HEADER_BYTES, 'persistenceId is not valid UTF-8');
  }
  const sequenceNr = readSafeU64(buf, OFFSET_SEQUENCE_NR);
  identity = { persistenceId, sequenceNr };
  if (sequenceNr === undefined || sequenceNr < 1) fail(OFFSET_SEQUENCE_NR, 'sequenceNr out of range');
  const timestamp = readSafeU64(buf, OFFSET_TIMESTAMP);
  if (timestamp === undefined) fail(OFFSET_TIMESTAMP, 'timestamp out of range');
  const payloadLength = buf.readUInt32BE(OFFSET_PAYLOAD_LENGTH);
  const crcAt = payloadAt + payloadLength;
  const expectedLength = crcAt + CRC_BYTES;
  if (buf.length < expectedLength) {
    fail(
      buf.length,
      `truncated: ${buf.length} of ${expectedLength} bytes (payload of ${payloadLength} bytes)`,
    );
  }
  if (buf.length > expectedLength) {
    fail(expectedLength, `${buf.length - expectedLength} unexpected bytes after the end of the envelope`);
  }
  const storedCrc = buf.readUInt32BE(crcAt);
  const crc = crc32(buf.subarray(0, crcAt));
  if (storedCrc !== crc) {
    fail(
      payloadAt,
      `payload CRC mismatch over bytes ${payloadAt}..${crcAt} (stored ${hex32(storedCrc)}, computed ${hex32(crc)})`,
    );
  }
  return {
    persistenceId,
    sequenceNr: sequenceNr as number,
    timestamp: timestamp as number,
    serializerId: buf.readUInt32BE(OFFSET_SERIALIZER_ID),
    payload: buf.subarray(payloadAt, crcAt),
  };
}

function corrupted(
  where: EnvelopeSource,
  offset: number,
  reason: string,
  identity: { persistenceId?: string; sequenceNr?: number },
): SnapshotCorruptedError {
  if ('file' in where) return new SnapshotCorruptedError({ ...identity, file: where.file, offset, reason });
  return new SnapshotCorruptedError({ ...identity, key: where.key, reason: `${reason} (at byte ${offset})` });
}

function checkInteger(value: unknown, name: string, min: number, max: number): void {
  if (typeof value !== 'number') throw new TypeError(`snapshot envelope: ${name} must be a number`);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`snapshot envelope: ${name} must be an integer in ${min}..${max}, got ${value}`);
  }
}

function readSafeU64(buf: Buffer, offset: number): number | undefined {
  const value = buf.readBigUInt64BE(offset);
  return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : undefined;
}

function hex32(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`;
}
