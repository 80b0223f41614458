import { readSync } from 'node:fs';
import { type FileHandle, mkdir, open, readFile, rename } from 'node:fs/promises';
import * as path from 'node:path';
import { crc32 } from '@cairn/actor-core';
import { decodeValue, encodeValue } from '../event-codec';
import type { DepositEvent } from '../payload';
import type { BenchSnapshots, BenchStore, BenchSystem, OpenOptions } from '../system';

/**
 * raw-fs: the ceiling for a file journal. One append-only file holds every id's events, framed
 * [u32 length][u32 crc32][payload]; appends that arrive while an fdatasync runs share the next one (group
 * commit). A frame's payload is [u16 id length][id][u32 first sequenceNr][u32 count] then per event
 * [u32 length][msgpack], so a batch is one frame and one checksum: atomic across a crash.
 * The per-id frame index lives in memory and is rebuilt by a checksummed scan on open.
 */
export const rawFsSystem: BenchSystem = {
  id: 'raw-fs',
  label: 'raw-fs',
  engine: 'fs',
  durable: true,
  durability: 'fdatasync per group commit (appends arriving during an fdatasync share the next one)',
  open: (dir, options) => RawFsStore.open(dir, options),
};

const FRAME_HEADER = 8;
const READ_CHUNK = 1 << 20;
/** Reads shorter than this are served with a synchronous read on the main thread. */
const SYNC_READ_MAX = 64 * 1024;

interface Frame {
  readonly offset: number;
  readonly length: number;
  readonly firstSeq: number;
  readonly count: number;
}

interface IdLog {
  readonly frames: Frame[];
  /** Highest sequenceNr assigned, including frames not yet committed. */
  assigned: number;
}

interface PendingFrame {
  readonly log: IdLog;
  readonly bytes: Buffer;
  readonly firstSeq: number;
  readonly count: number;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

export class RawFsStore implements BenchStore {
  readonly snapshots: BenchSnapshots;
  private readonly index = new Map<string, IdLog>();
  private pending: PendingFrame[] = [];
  private committing = false;

  private constructor(
    private readonly file: FileHandle,
    private end: number,
    private readonly durable: boolean,
    snapshotDir: FileHandle,
    snapshotPath: string,
  ) {
    this.snapshots = new RawFsSnapshots(snapshotDir, snapshotPath, durable);
  }

  static async open(dir: string, options: OpenOptions): Promise<RawFsStore> {
    await mkdir(path.join(dir, 'snapshots'), { recursive: true });
    const dirHandle = await open(dir, 'r');
    try {
      // The log's directory entry must be durable too, or a crash can lose the whole new file.
      await dirHandle.sync();
    } finally {
      await dirHandle.close();
    }
    const file = await open(path.join(dir, 'events.log'), 'a+');
    let snapshotDir: FileHandle | undefined;
    try {
      snapshotDir = await open(path.join(dir, 'snapshots'), 'r');
      const { size } = await file.stat();
      const store = new RawFsStore(file, size, options.durable, snapshotDir, path.join(dir, 'snapshots'));
      await store.scan(size);
      return store;
    } catch (error) {
      await file.close();
      await snapshotDir?.close();
      throw error;
    }
  }

  append(id: string, event: DepositEvent): Promise<void> {
    return this.enqueue(id, [event]);
  }

  appendBatch(id: string, events: readonly DepositEvent[]): Promise<void> {
    return this.enqueue(id, events);
  }

  /**
   * Reads the id's frames from `fromSequenceNr` on: frames lying back to back in the file are read
   * together (up to 1 MiB at a time), and a read under 64 KiB is served synchronously (from the page cache,
   * no libuv round trip) as a hand-written reader would; every frame's checksum is checked.
   */
  async replay(id: string, fromSequenceNr: number, onEvent: (event: DepositEvent) => void): Promise<number> {
    const frames = this.index.get(id)?.frames;
    if (!frames) return 0;
    let read = 0;
    let k = 0;
    while (k < frames.length) {
      const first = frames[k] as Frame;
      if (first.firstSeq + first.count <= fromSequenceNr) {
        k++;
        continue;
      }
      let end = first.offset + first.length;
      let last = k + 1;
      for (; last < frames.length; last++) {
        const next = frames[last] as Frame;
        if (next.offset !== end || end + next.length - first.offset > READ_CHUNK) break;
        end += next.length;
      }
      const chunk = Buffer.allocUnsafe(end - first.offset);
      if (chunk.length < SYNC_READ_MAX) readFullySync(this.file.fd, chunk, first.offset);
      else await readFully(this.file, chunk, first.offset);
      for (; k < last; k++) {
        const frame = frames[k] as Frame;
        const at = frame.offset - first.offset;
        const payload = checkFrame(chunk, at, frame.offset);
        let cursor = at + FRAME_HEADER + 2 + payload.readUInt16LE(0) + 8;
        for (let e = 0; e < frame.count; e++) {
          const length = chunk.readUInt32LE(cursor);
          cursor += 4;
          if (frame.firstSeq + e >= fromSequenceNr) {
            onEvent(decodeValue(chunk.subarray(cursor, cursor + length)) as DepositEvent);
            read++;
          }
          cursor += length;
        }
      }
    }
    return read;
  }

  async close(): Promise<void> {
    while (this.committing || this.pending.length > 0) {
      await new Promise((resolve) => setImmediate(resolve));
    }
    await this.file.close();
    await (this.snapshots as RawFsSnapshots).close();
  }

  private enqueue(id: string, events: readonly DepositEvent[]): Promise<void> {
    let log = this.index.get(id);
    if (!log) {
      log = { frames: [], assigned: 0 };
      this.index.set(id, log);
    }
    const firstSeq = log.assigned + 1;
    log.assigned += events.length;
    const bytes = encodeFrame(id, firstSeq, events);
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ log: log, bytes, firstSeq, count: events.length, resolve, reject });
      if (!this.committing) {
        this.committing = true;
        setImmediate(() => void this.commitGroup());
      }
    });
  }

  /**
   * Writes everything queued with one write and one fdatasync, then resolves those appends. The next group
   * starts from setImmediate, never synchronously: the writers whose appends just resolved issue their next
   * append in the microtasks that follow, and they must all make it into the next group, not one of them
   * alone.
   */
  private async commitGroup(): Promise<void> {
    const group = this.pending;
    this.pending = [];
    const start = this.end;
    const bytes = Buffer.concat(group.map((p) => p.bytes));
    let failure: { error: unknown } | undefined;
    try {
      await writeFully(this.file, bytes, start);
      if (this.durable) await this.file.datasync();
    } catch (error) {
      failure = { error };
    }
    if (failure) {
      for (const p of group) p.reject(failure.error);
    } else {
      this.end = start + bytes.length;
      let offset = start;
      for (const p of group) {
        p.log.frames.push({ offset, length: p.bytes.length, firstSeq: p.firstSeq, count: p.count });
        offset += p.bytes.length;
        p.resolve();
      }
    }
    if (this.pending.length > 0) {
      setImmediate(() => void this.commitGroup());
    } else {
      this.committing = false;
    }
  }

  /** Rebuilds the frame index, verifying every checksum; a torn tail is cut back, other damage throws. */
  private async scan(size: number): Promise<void> {
    let position = 0;
    let chunk: Buffer = Buffer.alloc(0);
    let chunkStart = 0;
    while (position + FRAME_HEADER <= size) {
      if (position + FRAME_HEADER > chunkStart + chunk.length) {
        ({ chunk, chunkStart } = await this.readChunk(position, FRAME_HEADER, size));
      }
      const length = chunk.readUInt32LE(position - chunkStart);
      if (position + FRAME_HEADER + length > size) break;
      if (position + FRAME_HEADER + length > chunkStart + chunk.length) {
        ({ chunk, chunkStart } = await this.readChunk(position, FRAME_HEADER + length, size));
      }
      const payload = checkFrame(chunk, position - chunkStart, position);
      const idLength = payload.readUInt16LE(0);
      const id = payload.toString('utf8', 2, 2 + idLength);
      const firstSeq = payload.readUInt32LE(2 + idLength);
      const count = payload.readUInt32LE(6 + idLength);
      let log = this.index.get(id);
      if (!log) {
        log = { frames: [], assigned: 0 };
        this.index.set(id, log);
      }
      log.frames.push({ offset: position, length: FRAME_HEADER + length, firstSeq, count });
      log.assigned = firstSeq + count - 1;
      position += FRAME_HEADER + length;
    }
    if (position < size) {
      // A frame cut short by a crash was never acknowledged (its fdatasync never returned): drop it.
      await this.file.truncate(position);
      this.end = position;
    }
  }

  private async readChunk(
    position: number,
    atLeast: number,
    size: number,
  ): Promise<{ chunk: Buffer; chunkStart: number }> {
    const chunk = Buffer.allocUnsafe(Math.min(Math.max(READ_CHUNK, atLeast), size - position));
    await readFully(this.file, chunk, position);
    return { chunk, chunkStart: position };
  }
}

function encodeFrame(id: string, firstSeq: number, events: readonly DepositEvent[]): Buffer {
  const idBytes = Buffer.from(id, 'utf8');
  const encoded = events.map(encodeValue);
  let payloadLength = 2 + idBytes.length + 8;
  for (const e of encoded) payloadLength += 4 + e.length;
  const frame = Buffer.allocUnsafe(FRAME_HEADER + payloadLength);
  frame.writeUInt32LE(payloadLength, 0);
  let cursor = FRAME_HEADER;
  cursor = frame.writeUInt16LE(idBytes.length, cursor);
  cursor += idBytes.copy(frame, cursor);
  cursor = frame.writeUInt32LE(firstSeq, cursor);
  cursor = frame.writeUInt32LE(events.length, cursor);
  for (const e of encoded) {
    cursor = frame.writeUInt32LE(e.length, cursor);
    cursor += e.copy(frame, cursor);
  }
  frame.writeUInt32LE(crc32(frame.subarray(FRAME_HEADER)), 4);
  return frame;
}

/** The payload of the frame at `at` in `chunk` after checking its checksum; `fileOffset` names it on failure. */
function checkFrame(chunk: Buffer, at: number, fileOffset: number): Buffer {
  const length = chunk.readUInt32LE(at);
  const payload = chunk.subarray(at + FRAME_HEADER, at + FRAME_HEADER + length);
  if (payload.length !== length || crc32(payload) !== chunk.readUInt32LE(at + 4)) {
    throw new Error(`raw-fs: corrupt frame at offset ${fileOffset} of events.log`);
  }
  return payload;
}

async function writeFully(file: FileHandle, bytes: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await file.write(bytes, done, bytes.length - done, position + done);
    done += bytesWritten;
  }
}

function readFullySync(fd: number, into: Buffer, position: number): void {
  let done = 0;
  while (done < into.length) {
    const bytesRead = readSync(fd, into, done, into.length - done, position + done);
    if (bytesRead === 0) throw new Error(`raw-fs: unexpected end of events.log at ${position + done}`);
    done += bytesRead;
  }
}

async function readFully(file: FileHandle, into: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < into.length) {
    const { bytesRead } = await file.read(into, done, into.length - done, position + done);
    if (bytesRead === 0) throw new Error(`raw-fs: unexpected end of events.log at ${position + done}`);
    done += bytesRead;
  }
}

/** One file per id: [u32 crc32][u32 sequenceNr][msgpack state], written to a temp file, synced, renamed. */
class RawFsSnapshots implements BenchSnapshots {
  constructor(
    private readonly dirHandle: FileHandle,
    private readonly dir: string,
    private readonly durable: boolean,
  ) {}

  async save(id: string, sequenceNr: number, state: unknown): Promise<void> {
    const body = encodeValue(state);
    const bytes = Buffer.allocUnsafe(8 + body.length);
    bytes.writeUInt32LE(sequenceNr, 4);
    body.copy(bytes, 8);
    bytes.writeUInt32LE(crc32(bytes.subarray(4)), 0);
    const target = path.join(this.dir, `${encodeURIComponent(id)}.snap`);
    const temp = `${target}.tmp`;
    const file = await open(temp, 'w');
    try {
      await writeFully(file, bytes, 0);
      if (this.durable) await file.datasync();
    } finally {
      await file.close();
    }
    await rename(temp, target);
    if (this.durable) await this.dirHandle.sync();
  }

  async load(id: string): Promise<{ sequenceNr: number; state: unknown } | undefined> {
    let bytes: Buffer;
    try {
      bytes = await readFile(path.join(this.dir, `${encodeURIComponent(id)}.snap`));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    if (bytes.length < 8 || crc32(bytes.subarray(4)) !== bytes.readUInt32LE(0)) {
      throw new Error(`raw-fs: corrupt snapshot of ${id}`);
    }
    return { sequenceNr: bytes.readUInt32LE(4), state: decodeValue(bytes.subarray(8)) };
  }

  close(): Promise<void> {
    return this.dirHandle.close();
  }
}

/**
 * How many 10 KB write + fdatasync rounds per second one file takes on this disk: the bound for any
 * durable snapshot save (which needs at least that, plus a rename and a directory sync).
 */
export async function fdatasyncRate(dir: string, rounds: number): Promise<number> {
  const file = await open(path.join(dir, 'fdatasync-probe'), 'w');
  const bytes = Buffer.alloc(10 * 1024, 7);
  try {
    const started = performance.now();
    for (let k = 0; k < rounds; k++) {
      await writeFully(file, bytes, 0);
      await file.datasync();
    }
    return rounds / ((performance.now() - started) / 1000);
  } finally {
    await file.close();
  }
}
