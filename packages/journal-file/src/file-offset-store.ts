import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import * as path from 'node:path';
import {
  checkOffsetToSave,
  checkProjectionName,
  crc32,
  JournalClosedError,
  JournalCorruptedError,
  type OffsetStore,
} from '@cairn/actor-core';

/**
 * The file provider's OffsetStore: one small file per projection in the journal's `offsets/` directory,
 * named by a hash of the projection name (names may hold any character). A file holds one line:
 * `<CRC32 hex> {"name", "offset", "savedAt"}`. A save writes a temp file, fsyncs it, renames it over
 * the old one and fsyncs the directory, so a crash leaves the old offset or the new one, never a torn
 * one; a file whose checksum fails is reported as JournalCorruptedError naming it, never read as "no
 * offset" (that would replay a projection from the start). Offsets are not journal data: saving works
 * on a journal opened read-only too (a projection beside the writer keeps its offsets there).
 */
export class FileOffsetStore implements OffsetStore {
  private madeDir = false;

  constructor(
    private readonly dir: string,
    private readonly fsync: boolean,
    private readonly isClosed: () => boolean,
  ) {}

  async load(projectionName: string): Promise<string | undefined> {
    checkProjectionName(projectionName);
    this.checkOpen();
    const file = this.fileOf(projectionName);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    const match = /^([0-9a-f]{8}) (.*)\n$/s.exec(text);
    const corrupt = (reason: string) => new JournalCorruptedError({ file, offset: 0, reason });
    if (!match) throw corrupt('not an offset file (bad layout)');
    if (crc32(Buffer.from(match[2]!, 'utf8')).toString(16).padStart(8, '0') !== match[1]) {
      throw corrupt('offset file CRC mismatch');
    }
    const saved = JSON.parse(match[2]!) as { name?: unknown; offset?: unknown };
    if (saved.name !== projectionName || typeof saved.offset !== 'string') {
      throw corrupt(
        `the file holds the offset of ${JSON.stringify(saved.name)}, not of ${JSON.stringify(projectionName)}`,
      );
    }
    return saved.offset;
  }

  async save(projectionName: string, offset: string): Promise<void> {
    checkProjectionName(projectionName);
    checkOffsetToSave(offset);
    this.checkOpen();
    if (!this.madeDir) {
      await mkdir(this.dir, { recursive: true });
      if (this.fsync) await syncDirectory(path.dirname(this.dir));
      this.madeDir = true;
    }
    const file = this.fileOf(projectionName);
    const json = JSON.stringify({ name: projectionName, offset, savedAt: new Date().toISOString() });
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

  private fileOf(projectionName: string): string {
    const hash = createHash('sha256').update(projectionName, 'utf8').digest('hex').slice(0, 32);
    return path.join(this.dir, `${hash}.offset`);
  }

  private checkOpen(): void {
    if (this.isClosed()) throw new JournalClosedError('journal');
  }
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
