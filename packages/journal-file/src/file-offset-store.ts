import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import * as path from 'node:path';
import {
  checkOffsetToSave,
  checkProjectionName,
  crc32,
  defaultReporter,
  isPersistenceError,
  JournalClosedError,
  JournalCorruptedError,
  type ProjectionLock,
  type ProjectionRecordStore,
} from '@cairn/actor-core';
import { DirectoryLock } from '@cairn/snapshot';

/** A dead process's projection lock is taken over after this long (at once when it is known gone). */
const PROJECTION_LOCK_STALE_MS = 10_000;

type RecordKind = 'offset' | 'status';

/**
 * The file provider's OffsetStore: one small file per projection in the journal's `offsets/` directory,
 * named by a hash of the projection name (names may hold any character). A file holds one line:
 * `<CRC32 hex> {"name", "offset", "savedAt"}`. A save writes a temp file, fsyncs it, renames it over
 * the old one and fsyncs the directory, so a crash leaves the old offset or the new one, never a torn
 * one; a file whose checksum fails is reported as JournalCorruptedError naming it, never read as "no
 * offset" (that would replay a projection from the start). Offsets are not journal data: saving works
 * on a journal opened read-only too (a projection beside the writer keeps its offsets there).
 *
 * It also keeps projection records (ProjectionRecordStore): a status per name in `<hash>.status` (the
 * same checksummed format) and a lock per name, `projection-<hash>.lock`, taken like the journal's
 * directory lock (a dead holder's lock is taken over), so one projection runs in one process at a time.
 */
export class FileOffsetStore implements ProjectionRecordStore {
  readonly capabilities = { projectionRecords: true } as const;
  private madeDir = false;
  private readonly held = new Set<string>();

  constructor(
    private readonly dir: string,
    private readonly fsync: boolean,
    private readonly isClosed: () => boolean,
  ) {}

  async load(projectionName: string): Promise<string | undefined> {
    checkProjectionName(projectionName);
    this.checkOpen();
    return (await this.readRecord(this.fileOf(projectionName, 'offset'), 'offset', projectionName))?.value;
  }

  async save(projectionName: string, offset: string): Promise<void> {
    checkProjectionName(projectionName);
    checkOffsetToSave(offset);
    this.checkOpen();
    await this.writeRecord(this.fileOf(projectionName, 'offset'), { name: projectionName, offset });
  }

  async loadStatus(projectionName: string): Promise<string | undefined> {
    checkProjectionName(projectionName);
    this.checkOpen();
    return (await this.readRecord(this.fileOf(projectionName, 'status'), 'status', projectionName))?.value;
  }

  async saveStatus(projectionName: string, status: string): Promise<void> {
    checkProjectionName(projectionName);
    if (typeof status !== 'string') throw new TypeError('status must be a string');
    this.checkOpen();
    await this.writeRecord(this.fileOf(projectionName, 'status'), { name: projectionName, status });
  }

  async deleteOffset(projectionName: string): Promise<void> {
    checkProjectionName(projectionName);
    this.checkOpen();
    await rm(this.fileOf(projectionName, 'offset'), { force: true });
    if (this.fsync) await syncDirectory(this.dir).catch(() => undefined);
  }

  async names(): Promise<string[]> {
    this.checkOpen();
    let entries: string[];
    try {
      entries = await readdir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const names = new Set<string>();
    for (const entry of entries) {
      if (entry.startsWith('.')) continue;
      const kind: RecordKind | undefined = entry.endsWith('.offset')
        ? 'offset'
        : entry.endsWith('.status')
          ? 'status'
          : undefined;
      if (!kind) continue;
      const record = await this.readRecord(path.join(this.dir, entry), kind, undefined);
      if (record) names.add(record.name);
    }
    return [...names].sort();
  }

  async projectionLocked(projectionName: string): Promise<boolean> {
    checkProjectionName(projectionName);
    this.checkOpen();
    if (this.held.has(projectionName)) return true;
    try {
      const lock = await this.lockProjection(projectionName);
      await lock.release();
      return false;
    } catch (e) {
      if (isPersistenceError(e, 'ERR_JOURNAL_LOCKED')) return true;
      throw e;
    }
  }

  async lockProjection(projectionName: string): Promise<ProjectionLock> {
    checkProjectionName(projectionName);
    this.checkOpen();
    await this.makeDir();
    const lock = await DirectoryLock.acquire(
      this.dir,
      `projection-${hashOf(projectionName)}`,
      PROJECTION_LOCK_STALE_MS,
      defaultReporter,
      () => undefined,
    );
    this.held.add(projectionName);
    let released = false;
    return {
      release: async () => {
        if (released) return;
        released = true;
        this.held.delete(projectionName);
        await lock.release();
      },
    };
  }

  /** The record in `file`: the name it is for (checked against `expected` when given) and its value. */
  private async readRecord(
    file: string,
    kind: RecordKind,
    expected: string | undefined,
  ): Promise<{ name: string; value: string } | undefined> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    const match = /^([0-9a-f]{8}) (.*)\n$/s.exec(text);
    const corrupt = (reason: string) => new JournalCorruptedError({ file, offset: 0, reason });
    if (!match) throw corrupt(`not an ${kind} file (bad layout)`);
    if (crc32(Buffer.from(match[2]!, 'utf8')).toString(16).padStart(8, '0') !== match[1]) {
      throw corrupt(`${kind} file CRC mismatch`);
    }
    const saved = JSON.parse(match[2]!) as Record<string, unknown>;
    const value = saved[kind];
    if (typeof saved.name !== 'string' || typeof value !== 'string') {
      throw corrupt(`the ${kind} record lacks its fields`);
    }
    if (expected !== undefined && saved.name !== expected) {
      throw corrupt(
        `the file holds the ${kind} of ${JSON.stringify(saved.name)}, not of ${JSON.stringify(expected)}`,
      );
    }
    return { name: saved.name, value };
  }

  /** Replaces `file` with the record: temp file, fsync, rename, directory fsync. */
  private async writeRecord(file: string, record: Record<string, string>): Promise<void> {
    await this.makeDir();
    const json = JSON.stringify({ ...record, savedAt: new Date().toISOString() });
    const line = `${crc32(Buffer.from(json, 'utf8')).toString(16).padStart(8, '0')} ${json}\n`;
    const temp = path.join(this.dir, `.${path.basename(file)}.${randomBytes(4).toString('hex')}.tmp`);
    try {
      const handle = await open(temp, 'w');
      try {
        await handle.writeFile(line, 'utf8');
        if (this.fsync) await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, file);
    } catch (e) {
      await rm(temp, { force: true });
      throw e;
    }
    if (this.fsync) await syncDirectory(this.dir);
  }

  private async makeDir(): Promise<void> {
    if (this.madeDir) return;
    await mkdir(this.dir, { recursive: true });
    if (this.fsync) await syncDirectory(path.dirname(this.dir));
    this.madeDir = true;
  }

  private fileOf(projectionName: string, kind: RecordKind): string {
    return path.join(this.dir, `${hashOf(projectionName)}.${kind}`);
  }

  private checkOpen(): void {
    if (this.isClosed()) throw new JournalClosedError('journal');
  }
}

function hashOf(projectionName: string): string {
  return createHash('sha256').update(projectionName, 'utf8').digest('hex').slice(0, 32);
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
