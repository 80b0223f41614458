/** Test support: temp directories and a walk over the records of a segment file, for corruption tests. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { PersistenceReport } from '@cairn/actor-core';
import {
  decodeFrameHeader,
  decodeRecord,
  FRAME_HEADER_SIZE,
  isBadRecord,
  SEGMENT_HEADER_SIZE,
} from '../src/record-codec';

export function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-journal-file-'));
}

export function segmentFiles(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((n) => n.endsWith('.log'))
    .sort()
    .map((n) => path.join(dir, n));
}

export interface RecordAt {
  readonly offset: number;
  readonly length: number;
  readonly frameOffset: number;
  readonly persistenceId: string;
  readonly sequenceNr: number;
  /** Where the payload starts. */
  readonly payloadOffset: number;
}

/** Every record of a (healthy) segment, in file order. */
export function recordsOf(file: string): RecordAt[] {
  const bytes = fs.readFileSync(file);
  const out: RecordAt[] = [];
  let at = SEGMENT_HEADER_SIZE;
  while (at < bytes.length) {
    const header = decodeFrameHeader(bytes, at, bytes.length);
    if ('reason' in header) throw new Error(`${file} at ${at}: ${header.reason}`);
    const end = at + FRAME_HEADER_SIZE + header.bodyLength;
    let pos = at + FRAME_HEADER_SIZE;
    while (pos < end) {
      const r = decodeRecord(bytes, pos, end);
      if (isBadRecord(r)) throw new Error(`${file} at ${pos}: ${r.reason}`);
      out.push({
        offset: pos,
        length: r.length,
        frameOffset: at,
        persistenceId: r.persistenceId,
        sequenceNr: r.sequenceNr,
        payloadOffset: pos + r.length - r.payload.byteLength,
      });
      pos += r.length;
    }
    at = end;
  }
  return out;
}

export function flipByteAt(file: string, offset: number): void {
  const fd = fs.openSync(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, offset);
    b[0] = b[0]! ^ 0xff;
    fs.writeSync(fd, b, 0, 1, offset);
  } finally {
    fs.closeSync(fd);
  }
}

/** A reporter that keeps what it is told. */
export function collectingReporter(): {
  reports: PersistenceReport[];
  reporter: (r: PersistenceReport) => void;
} {
  const reports: PersistenceReport[] = [];
  return { reports, reporter: (r) => reports.push(r) };
}

export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** Reads until the iteration fails; returns what was served and the error. */
export async function readUntilError<T>(it: AsyncIterable<T>): Promise<{ served: T[]; error: unknown }> {
  const served: T[] = [];
  try {
    for await (const x of it) served.push(x);
  } catch (error) {
    return { served, error };
  }
  return { served, error: undefined };
}
