import { crc32Range } from '@cairn/actor-core';
import { open } from 'lmdb';
import {
  encodeFormat,
  encodeIdMetadata,
  entryKey,
  FORMAT_KEY,
  idPrefix,
  metadataKey,
} from '../src/record-codec';

/*
 * Writes environments the way earlier builds did, byte for byte, so the upgrade paths are tested against
 * the layouts those builds left on disk rather than against this build's encoders.
 */

/** An event value as format 1 wrote it: crc | version 1 | serializerId | timestamp | payload. */
export function encodeUnorderedEvent(key: Buffer, timestamp: number, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(17 + payload.byteLength);
  out.writeUInt8(1, 4);
  out.writeUInt32LE(1, 5); // msgpack
  out.writeDoubleLE(timestamp, 9);
  out.set(payload, 17);
  out.writeUInt32LE(crc32Range(out, 4, out.length, crc32Range(key, 0, key.length)), 0);
  return out;
}

/** msgpack of a small non-negative integer (a positive fixint). */
export function fixint(n: number): Buffer {
  if (!(n >= 0 && n < 128)) throw new RangeError(`${n} is not a positive fixint`);
  return Buffer.from([n]);
}

export interface UnorderedEvent {
  readonly sequenceNr: number;
  readonly timestamp: number;
  /** msgpack payload; default the fixint of sequenceNr. */
  readonly payload?: Uint8Array;
}

/**
 * A format-1 environment (metadata with per-id highest and low-water mark, version-1 records, no global
 * order), as the release before the read side wrote it. `lowWater` marks truncations; events below it are
 * still written when listed (a truncation that had not finished deleting).
 */
export async function writeFormat1(
  path: string,
  logs: Record<string, readonly UnorderedEvent[]>,
  lowWater: Record<string, number> = {},
): Promise<void> {
  const root = open({ path, maxDbs: 4 });
  const binary = { encoding: 'binary', keyEncoding: 'binary' } as const;
  const journal = root.openDB<Buffer, Buffer>({ name: 'journal', ...binary });
  const metadata = root.openDB<Buffer, Buffer>({ name: 'metadata', ...binary });
  root.openDB<Buffer, Buffer>({ name: 'snapshots', ...binary });
  await journal.transaction(() => {
    for (const [id, events] of Object.entries(logs)) {
      const prefix = idPrefix(id);
      for (const e of events) {
        const key = entryKey(prefix, e.sequenceNr);
        journal.putSync(key, encodeUnorderedEvent(key, e.timestamp, e.payload ?? fixint(e.sequenceNr)));
      }
      const key = metadataKey(id);
      const highest = Math.max(0, ...events.map((e) => e.sequenceNr));
      metadata.putSync(key, encodeIdMetadata(key, { highest, lowWater: lowWater[id] ?? 0 }));
    }
    metadata.putSync(FORMAT_KEY, encodeFormat(1));
  });
  await root.close();
}

/**
 * A journal database without metadata, as builds before the metadata database wrote: events only
 * (version-1 records).
 */
export async function writeWithoutMetadata(path: string, logs: Record<string, number[]>): Promise<void> {
  const root = open({ path, maxDbs: 4 });
  const journal = root.openDB<Buffer, Buffer>({ name: 'journal', encoding: 'binary', keyEncoding: 'binary' });
  await journal.transaction(() => {
    for (const [id, seqs] of Object.entries(logs)) {
      const prefix = idPrefix(id);
      for (const sequenceNr of seqs) {
        const key = entryKey(prefix, sequenceNr);
        journal.putSync(key, encodeUnorderedEvent(key, 1_700_000_000_000, fixint(sequenceNr & 0x7f)));
      }
    }
  });
  await root.close();
}

/** Reads a named database of a closed environment: [key, value] pairs in key order. */
export async function rawEntries(path: string, name: string): Promise<Array<[Buffer, Buffer]>> {
  const root = open({ path, maxDbs: 64 });
  try {
    const db = root.openDB<Buffer, Buffer>({ name, encoding: 'binary', keyEncoding: 'binary' });
    return [...db.getRange({})].map(({ key, value }) => [Buffer.from(key), Buffer.from(value)]);
  } finally {
    await root.close();
  }
}
