/**
 * The journal's own IO operations, run by its IoPool threads (see io-worker.ts) beside @cairn/snapshot's
 * standard ones: every blocking file operation (writes, fdatasyncs, scans, renames, deletes) runs there,
 * so the event loop never waits on the disk. File descriptors are process-wide: one opened on a pool
 * thread is used by the main thread for reads, and vice versa.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { encodeIndex } from './index-file';
import { intactEventLength } from './record-codec';
import { scanSegment } from './segment-scan';

function fsyncDirectory(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function writeAll(fd: number, bytes: Uint8Array, position: number): void {
  let done = 0;
  while (done < bytes.byteLength) {
    done += fs.writeSync(fd, bytes, done, bytes.byteLength - done, position + done);
  }
}

export interface AppendFrameTask {
  readonly fd: number;
  readonly bytes: Uint8Array;
  readonly position: number;
  readonly sync: boolean;
}

export const journalOperations = {
  /** Writes one frame at `position` and (when sync) fdatasyncs it: one commit, one sync. */
  appendFrame({ fd, bytes, position, sync }: AppendFrameTask): void {
    writeAll(fd, bytes, position);
    if (sync) fs.fdatasyncSync(fd);
  },

  /** Creates a segment with its header and makes the file and its name durable; returns its descriptor. */
  createSegment(task: { dir: string; file: string; header: Uint8Array; sync: boolean }): number {
    const fd = fs.openSync(task.file, 'wx+');
    try {
      writeAll(fd, task.header, 0);
      if (task.sync) {
        fs.fsyncSync(fd);
        fsyncDirectory(task.dir);
      }
      return fd;
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
  },

  openFile(task: { file: string; flags: string }): number {
    return fs.openSync(task.file, task.flags);
  },

  closeFile(task: { fd: number }): void {
    fs.closeSync(task.fd);
  },

  /**
   * Reads `length` bytes at `position` and checks the event records of the runs in them (offsets relative
   * to `position`, each run's records consecutive from `firsts[i]`, all of the id whose UTF-8 bytes are
   * `id`), as the read path would on the main thread (intactEventLength). Resolves to the bytes (handed
   * over, not copied), how many were read, and `verifiedTo`: the offset of the first record that failed,
   * or `length` when all passed. The main thread then parses the verified records without checking them
   * again, so a replay's checksums run here, beside the decoding of the chunk before.
   */
  readRuns(task: {
    fd: number;
    position: number;
    length: number;
    offsets: readonly number[];
    lengths: readonly number[];
    firsts: readonly number[];
    id: Uint8Array;
    /** Where to read to (handed over by the caller and back, so memory stays the main thread's). */
    into: Uint8Array;
  }): { bytes: Buffer; bytesRead: number; verifiedTo: number } {
    const bytes = Buffer.from(task.into.buffer, task.into.byteOffset, task.length);
    let bytesRead = 0;
    while (bytesRead < task.length) {
      const n = fs.readSync(task.fd, bytes, bytesRead, task.length - bytesRead, task.position + bytesRead);
      if (n === 0) break;
      bytesRead += n;
    }
    const id = Buffer.from(task.id.buffer, task.id.byteOffset, task.id.byteLength);
    let verifiedTo = task.length;
    runs: for (let r = 0; r < task.offsets.length; r++) {
      let at = task.offsets[r]!;
      const runEnd = at + task.lengths[r]!;
      // A short read fails the first record it cuts (the main thread names why).
      const end = Math.min(runEnd, bytesRead);
      for (let seq = task.firsts[r]!; at < runEnd; seq++) {
        const length = intactEventLength(bytes, at, end, id, seq);
        if (length < 0) {
          verifiedTo = at;
          break runs;
        }
        at += length;
      }
    }
    return { bytes, bytesRead, verifiedTo };
  },

  /** Reads and scans a whole segment (see segment-scan.ts). */
  scanSegment(task: { file: string; segment: number }) {
    return scanSegment(task.segment, fs.readFileSync(task.file));
  },

  /**
   * Seals a segment: scans it and, when it is clean, writes its sidecar index atomically. A segment
   * with problems gets no index, so every open scans it again and reports them.
   */
  sealSegment(task: { dir: string; file: string; indexFile: string; segment: number; sync: boolean }) {
    const scan = scanSegment(task.segment, fs.readFileSync(task.file));
    const clean = !scan.badHeader && !scan.torn && scan.problems.length === 0;
    if (clean) writeFileAtomic(task.dir, task.indexFile, encodeIndex(scan), task.sync);
    return { scan, indexed: clean };
  },

  /**
   * Installs a compacted segment: writes it to a temp file and syncs it, verifies it by scanning it, then
   * replaces its sidecar index and the segment itself, each atomically. Should a crash fall between the
   * two renames, the index no longer matches the segment's size and the next open rescans it.
   */
  installSegment(task: {
    dir: string;
    file: string;
    indexFile: string;
    segment: number;
    bytes: Uint8Array;
    sync: boolean;
  }) {
    const bytes = Buffer.from(task.bytes.buffer, task.bytes.byteOffset, task.bytes.byteLength);
    const scan = scanSegment(task.segment, bytes);
    if (scan.badHeader || scan.torn || scan.problems.length > 0) return { installed: false, scan };
    const temp = path.join(task.dir, `.${path.basename(task.file)}.${process.pid}.tmp`);
    const fd = fs.openSync(temp, 'w');
    try {
      writeAll(fd, bytes, 0);
      if (task.sync) fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    writeFileAtomic(task.dir, task.indexFile, encodeIndex(scan), task.sync);
    fs.renameSync(temp, task.file);
    if (task.sync) fsyncDirectory(task.dir);
    return { installed: true, scan };
  },

  /**
   * A read-only open's view of a segment through a descriptor it already holds (a live writer may
   * replace the file by compaction meanwhile; the descriptor keeps the version that was opened): the
   * sidecar index, if any, and the size of that version.
   */
  readIndexFd(task: { indexFile: string; fd: number }): { bytes: Buffer | undefined; size: number } {
    const size = fs.fstatSync(task.fd).size;
    try {
      return { bytes: fs.readFileSync(task.indexFile), size };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { bytes: undefined, size };
      throw e;
    }
  },

  /** Scans the segment version a descriptor holds, up to its size now (a read-only open). */
  scanSegmentFd(task: { fd: number; segment: number }) {
    const size = fs.fstatSync(task.fd).size;
    const bytes = Buffer.allocUnsafe(size);
    let done = 0;
    while (done < size) {
      const n = fs.readSync(task.fd, bytes, done, size - done, done);
      if (n === 0) break;
      done += n;
    }
    return scanSegment(task.segment, bytes.subarray(0, done));
  },

  /** A sidecar index and the current size of its segment, to tell a stale index from a good one. */
  readIndex(task: { indexFile: string; file: string }): { bytes: Buffer | undefined; size: number } {
    const size = fs.statSync(task.file).size;
    try {
      return { bytes: fs.readFileSync(task.indexFile), size };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { bytes: undefined, size };
      throw e;
    }
  },

  /** Cuts a file back to `length` (a torn tail, or a failed write) and syncs the new length. */
  truncateFile(task: { fd: number; length: number; sync: boolean }): void {
    fs.ftruncateSync(task.fd, task.length);
    if (task.sync) fs.fsyncSync(task.fd);
  },

  replaceFile(task: { dir: string; file: string; bytes: Uint8Array; sync: boolean }): void {
    writeFileAtomic(task.dir, task.file, task.bytes, task.sync);
  },

  /** Deletes files (missing ones are fine) and makes the deletions durable. */
  removeFiles(task: { dir: string; files: readonly string[]; sync: boolean }): void {
    for (const file of task.files) fs.rmSync(file, { force: true });
    if (task.sync) fsyncDirectory(task.dir);
  },

  /** A file's bytes, or undefined when it does not exist. */
  readFileIfExists(task: { file: string }): Buffer | undefined {
    try {
      return fs.readFileSync(task.file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  },

  /** The directory's entries, creating nothing (a read-only open); a missing directory throws ENOENT. */
  listDirectory(task: { dir: string }): string[] {
    return fs.readdirSync(task.dir);
  },

  /**
   * Writes a quarantine file (records cut by a repair) atomically and durably: the `quarantine`
   * directory is created and its entry synced when missing, then temp file, fsync, rename, fsync of the
   * directory. Always synced: the file is the only copy of the cut bytes that survives compaction.
   */
  writeQuarantine(task: { dir: string; file: string; bytes: Uint8Array }): void {
    const quarantine = path.dirname(task.file);
    if (!fs.existsSync(quarantine)) {
      fs.mkdirSync(quarantine);
      fsyncDirectory(task.dir);
    }
    writeFileAtomic(quarantine, task.file, task.bytes, true);
  },

  /** Removes temp files (".name.pid.tmp") an interrupted atomic write left in `dir`, and syncs it. */
  removeTempFiles(task: { dir: string; sync: boolean }): void {
    const temps = fs.readdirSync(task.dir).filter((n) => n.startsWith('.') && n.endsWith('.tmp'));
    for (const name of temps) fs.rmSync(path.join(task.dir, name), { force: true });
    if (temps.length > 0 && task.sync) fsyncDirectory(task.dir);
  },

  /** Creates the directory (and parents) if needed; returns its entries. */
  prepareDirectory(task: { dir: string }): string[] {
    fs.mkdirSync(task.dir, { recursive: true });
    return fs.readdirSync(task.dir);
  },
};

function writeFileAtomic(dir: string, file: string, bytes: Uint8Array, sync: boolean): void {
  const temp = path.join(dir, `.${path.basename(file)}.${process.pid}.tmp`);
  const fd = fs.openSync(temp, 'w');
  try {
    writeAll(fd, bytes, 0);
    if (sync) fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(temp, file);
  if (sync) fsyncDirectory(dir);
}

export type JournalOperations = typeof journalOperations;
export type JournalOperation = keyof JournalOperations;
