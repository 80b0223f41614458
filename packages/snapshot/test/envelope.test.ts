import { isPersistenceError, type SnapshotCorruptedError, type StoredSnapshot } from '@cairn/actor-core';
import {
  decodeSnapshotEnvelope,
  encodeSnapshotEnvelope,
  SNAPSHOT_ENVELOPE_OVERHEAD,
  SNAPSHOT_FORMAT_VERSION,
} from '@cairn/snapshot';
import fc from 'fast-check';

const sample: StoredSnapshot = {
  persistenceId: 'account-42',
  sequenceNr: 1000,
  timestamp: 1_790_000_000_000,
  serializerId: 1,
  payload: Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
};
const file = { file: '/data/snapshots/account-42/00001000.snapshot' };

function corruptionOf(
  bytes: Uint8Array,
  where: { file: string } | { key: string } = file,
): SnapshotCorruptedError {
  try {
    decodeSnapshotEnvelope(bytes, where);
  } catch (e) {
    if (isPersistenceError(e, 'ERR_SNAPSHOT_CORRUPTED')) return e as SnapshotCorruptedError;
    throw e;
  }
  throw new Error('decoding corrupt bytes succeeded');
}

describe('snapshot envelope', () => {
  it('round-trips any id, sequenceNr, timestamp, serializer id and payload', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme', minLength: 1, maxLength: 200 }),
        fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
        fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
        fc.integer({ min: 0, max: 0xffff_ffff }),
        fc.uint8Array({ maxLength: 2000 }),
        (persistenceId, sequenceNr, timestamp, serializerId, payload) => {
          const snapshot = { persistenceId, sequenceNr, timestamp, serializerId, payload };
          const bytes = encodeSnapshotEnvelope(snapshot);
          expect(bytes.length).toBe(
            SNAPSHOT_ENVELOPE_OVERHEAD + Buffer.byteLength(persistenceId) + payload.length,
          );
          const decoded = decodeSnapshotEnvelope(bytes, file);
          expect({ ...decoded, payload: Buffer.from(decoded.payload) }).toEqual({
            ...snapshot,
            payload: Buffer.from(payload),
          });
        },
      ),
      { numRuns: 300 },
    );
  });

  it('round-trips the extremes: MAX_SAFE_INTEGER, a 1 KB unicode id, an empty payload', () => {
    const persistenceId = '\u{1F600}'.repeat(256); // 4 bytes each: exactly 1024 bytes of UTF-8
    const snapshot = {
      persistenceId,
      sequenceNr: Number.MAX_SAFE_INTEGER,
      timestamp: Number.MAX_SAFE_INTEGER,
      serializerId: 0xffff_ffff,
      payload: new Uint8Array(0),
    };
    const decoded = decodeSnapshotEnvelope(encodeSnapshotEnvelope(snapshot), { key: 'k' });
    expect(decoded.persistenceId).toBe(persistenceId);
    expect(decoded.sequenceNr).toBe(Number.MAX_SAFE_INTEGER);
    expect(decoded.timestamp).toBe(Number.MAX_SAFE_INTEGER);
    expect(decoded.payload.length).toBe(0);
  });

  it('encodes into a buffer that owns its whole ArrayBuffer (transferable)', () => {
    const bytes = encodeSnapshotEnvelope({ ...sample, payload: new Uint8Array(3) });
    expect(bytes.byteOffset).toBe(0);
    expect(bytes.buffer.byteLength).toBe(bytes.length);
  });

  it('detects every single-byte flip, naming the file and an offset inside it', () => {
    const bytes = encodeSnapshotEnvelope(sample);
    for (let i = 0; i < bytes.length; i++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const copy = Buffer.from(bytes);
        copy[i] = (copy[i] as number) ^ mask;
        const e = corruptionOf(copy);
        expect(e.file).toBe(file.file);
        expect(e.offset).toBeGreaterThanOrEqual(0);
        expect(e.offset).toBeLessThanOrEqual(bytes.length);
        expect(e.message).toContain(file.file);
      }
    }
  });

  it('names the persistenceId and sequenceNr when only the payload is corrupt', () => {
    const bytes = encodeSnapshotEnvelope(sample);
    const payloadAt = bytes.length - 4 - sample.payload.length;
    bytes[payloadAt + 3] = (bytes[payloadAt + 3] as number) ^ 0x10;
    const e = corruptionOf(bytes);
    expect(e.persistenceId).toBe('account-42');
    expect(e.sequenceNr).toBe(1000);
    expect(e.offset).toBe(payloadAt);
    expect(e.reason).toMatch(/payload CRC mismatch/);
    expect(e.message).toMatch(/"account-42" sequenceNr 1000/);
  });

  it('does not name an id from a header that fails its checksum', () => {
    const bytes = encodeSnapshotEnvelope(sample);
    bytes[36] = (bytes[36] as number) ^ 0x01; // first byte of the persistenceId
    const e = corruptionOf(bytes);
    expect(e.persistenceId).toBeUndefined();
    expect(e.reason).toMatch(/header CRC mismatch/);
  });

  it('detects truncation at every length', () => {
    const bytes = encodeSnapshotEnvelope(sample);
    for (let length = 0; length < bytes.length; length++) {
      const e = corruptionOf(bytes.subarray(0, length));
      expect(e.file).toBe(file.file);
      expect(e.reason).toMatch(length < 4 ? /not a Cairn v1 snapshot envelope/ : /truncated/);
    }
  });

  it('detects bytes appended after the envelope', () => {
    const bytes = Buffer.concat([encodeSnapshotEnvelope(sample), Buffer.from([0])]);
    expect(corruptionOf(bytes).reason).toMatch(/unexpected bytes after the end/);
  });

  it('refuses data without the magic (an older, checksum-less snapshot) as not a Cairn v1 envelope', () => {
    const legacy = Buffer.from(JSON.stringify({ state: { balance: 10 }, sequenceNr: 3 }));
    const e = corruptionOf(legacy, { key: 'snap/a/3' });
    expect(e.key).toBe('snap/a/3');
    expect(e.reason).toMatch(/not a Cairn v1 snapshot envelope/);
    expect(e.reason).toMatch(/older, checksum-less format/);
    expect(e.message).toContain('snap/a/3');
  });

  it('refuses a future format version, saying so', () => {
    const bytes = encodeSnapshotEnvelope(sample);
    bytes.writeUInt16BE(SNAPSHOT_FORMAT_VERSION + 1, 4);
    const e = corruptionOf(bytes);
    expect(e.offset).toBe(4);
    expect(e.reason).toMatch(/format version 2 is newer than this build reads \(1\)/);
  });

  it('gives keys the offset in the reason', () => {
    const bytes = encodeSnapshotEnvelope(sample);
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 1;
    const e = corruptionOf(bytes, { key: 'a#1000' });
    expect(e.key).toBe('a#1000');
    expect(e.file).toBeUndefined();
    expect(e.reason).toMatch(/at byte \d+/);
  });

  it('accepts a plain Uint8Array view at an offset', () => {
    const bytes = encodeSnapshotEnvelope(sample);
    const backing = new Uint8Array(bytes.length + 10);
    backing.set(bytes, 7);
    const decoded = decodeSnapshotEnvelope(backing.subarray(7, 7 + bytes.length), file);
    expect(decoded.sequenceNr).toBe(1000);
  });

  it('rejects unrepresentable snapshots with TypeError or RangeError', () => {
    expect(() => encodeSnapshotEnvelope({ ...sample, persistenceId: '' })).toThrow(TypeError);
    expect(() => encodeSnapshotEnvelope({ ...sample, persistenceId: 'x'.repeat(1025) })).toThrow(RangeError);
    expect(() => encodeSnapshotEnvelope({ ...sample, persistenceId: '\uD800' })).toThrow(TypeError);
    expect(() => encodeSnapshotEnvelope({ ...sample, sequenceNr: 0 })).toThrow(RangeError);
    expect(() => encodeSnapshotEnvelope({ ...sample, sequenceNr: 1.5 })).toThrow(RangeError);
    expect(() => encodeSnapshotEnvelope({ ...sample, sequenceNr: Number.MAX_SAFE_INTEGER + 1 })).toThrow(
      RangeError,
    );
    expect(() => encodeSnapshotEnvelope({ ...sample, timestamp: -1 })).toThrow(RangeError);
    expect(() => encodeSnapshotEnvelope({ ...sample, serializerId: -1 })).toThrow(RangeError);
    expect(() => encodeSnapshotEnvelope({ ...sample, payload: 'text' as unknown as Uint8Array })).toThrow(
      TypeError,
    );
  });
});
