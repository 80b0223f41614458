import * as fs from 'node:fs';
import * as path from 'node:path';
import { createPersistence, type PersistenceReport } from '@cairn/actor-core';
import { FileMessageJournal, provider, ReadOnlyError } from '@cairn/journal-file';
import { lockFileName } from '@cairn/snapshot';
import { captureResources, expectNoLeakedResources } from '@cairn/testkit';
import { killed, spawnFixture, waitForLine } from './child-process';
import { collect, collectingReporter, recordsOf, segmentFiles, tempDir } from './journal-files';

/** Every file under `dir` with its bytes and mtime. */
function snapshotFiles(dir: string): Map<string, { bytes: Buffer; mtimeMs: number }> {
  const out = new Map<string, { bytes: Buffer; mtimeMs: number }>();
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    out.set(file, { bytes: fs.readFileSync(file), mtimeMs: fs.statSync(file).mtimeMs });
  }
  return out;
}

const readOnly = (dir: string, reporter?: (r: PersistenceReport) => void) =>
  FileMessageJournal.open<unknown>({
    path: dir,
    readOnly: true,
    ioThreads: 1,
    ...(reporter ? { reporter } : {}),
  });

describe('FileMessageJournal readOnly', () => {
  let dir: string;
  beforeEach(() => {
    dir = tempDir();
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function writeSome(extra: { segmentSize?: number } = {}) {
    const journal = await FileMessageJournal.open({ path: dir, ioThreads: 1, fsync: false, ...extra });
    for (let i = 0; i < 30; i++) {
      await journal.append('a', { i, pad: 'a'.repeat(100) });
      await journal.appendBatch('b', [i, i]);
    }
    await journal.truncateBefore('b', 11);
    await journal.close();
  }

  it('reads everything, changes no byte or mtime, takes no lock, and rejects every write', async () => {
    await writeSome({ segmentSize: 4096 }); // several sealed segments with sidecar indexes
    fs.rmSync(path.join(dir, `${path.basename(segmentFiles(dir)[0]!, '.log')}.idx`), { force: true });
    const resources = captureResources();
    const journal = await readOnly(dir);
    expect(journal.readOnly).toBe(true);
    expect(fs.existsSync(path.join(dir, lockFileName('journal')))).toBe(false);
    // A writer can open beside it: no lock is held.
    const writer = await FileMessageJournal.open({ path: dir, ioThreads: 1 });
    await writer.close();
    const after = snapshotFiles(dir); // the writer's open may rebuild the index we removed: compare below
    expect((await collect(journal.readFrom('a', 1))).map((e) => (e.message as { i: number }).i)).toEqual(
      Array.from({ length: 30 }, (_, i) => i),
    );
    expect((await collect(journal.readFrom('b', 1))).map((e) => e.sequenceNr)[0]).toBe(11);
    expect(await journal.highestSequenceNr('b')).toBe(60);
    const ids: string[] = [];
    for await (const id of journal.persistenceIds()) ids.push(id);
    expect(ids.sort()).toEqual(['a', 'b']);

    for (const write of [
      () => journal.append('a', 'x'),
      () => journal.appendBatch('c', ['x']),
      () => journal.importEntries('c', [{ persistenceId: 'c', sequenceNr: 1, timestamp: 1, message: 'x' }]),
      () => journal.truncateBefore('a', 5),
      () => journal.compact(),
      () => journal.repairAfterCorruption('a'),
    ]) {
      const error = await write().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ReadOnlyError);
      expect(error).toMatchObject({ code: 'ERR_READ_ONLY', path: dir });
    }
    expect(await journal.highestSequenceNr('a')).toBe(30);
    await journal.close();
    await expectNoLeakedResources(resources);
    // The read-only session itself changed nothing: every file as the writer's session left it.
    const now = snapshotFiles(dir);
    expect([...now.keys()].sort()).toEqual([...after.keys()].sort());
    for (const [file, { bytes, mtimeMs }] of now) {
      expect({ file, same: bytes.equals(after.get(file)!.bytes), mtimeMs }).toEqual({
        file,
        same: true,
        mtimeMs: after.get(file)!.mtimeMs,
      });
    }
  });

  it('alone, changes no byte or mtime of any file (a missing index is scanned, not written)', async () => {
    await writeSome({ segmentSize: 4096 });
    fs.rmSync(path.join(dir, `${path.basename(segmentFiles(dir)[0]!, '.log')}.idx`), { force: true });
    const before = snapshotFiles(dir);
    const journal = await readOnly(dir);
    expect((await collect(journal.readFrom('a', 1))).length).toBe(30);
    await journal.close();
    const after = snapshotFiles(dir);
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
    for (const [file, { bytes, mtimeMs }] of after) {
      expect(bytes.equals(before.get(file)!.bytes)).toBe(true);
      expect(mtimeMs).toBe(before.get(file)!.mtimeMs);
    }
  });

  it('a torn tail is reported and left as it is, not cut; the whole commits before it are read', async () => {
    await writeSome();
    const [file] = segmentFiles(dir);
    const last = recordsOf(file!).at(-1)!;
    const size = fs.statSync(file!).size;
    fs.truncateSync(file!, last.offset + 10); // the last commit (b's truncation mark) torn mid-record
    const torn = fs.readFileSync(file!);
    const { reports, reporter } = collectingReporter();
    const journal = await readOnly(dir, reporter);
    expect(reports.map((r) => r.kind)).toEqual(['torn-tail-ignored']);
    expect(reports[0]!.message).toContain(file!);
    expect(await journal.highestSequenceNr('b')).toBe(60);
    // The torn commit is not read: b's mark in it is not in effect.
    expect((await collect(journal.readFrom('b', 1)))[0]!.sequenceNr).toBe(1);
    expect((await collect(journal.readFrom('a', 1))).length).toBe(30);
    await journal.close();
    expect(fs.readFileSync(file!).equals(torn)).toBe(true);
    expect(size).toBeGreaterThan(torn.length);
  });

  it('a missing directory is an error and is not created', async () => {
    const missing = path.join(dir, 'nope', 'journal');
    await expect(readOnly(missing)).rejects.toMatchObject({
      code: 'ERR_STORAGE',
      message: expect.stringContaining('does not exist (a read-only open creates nothing)'),
    });
    expect(fs.existsSync(path.join(dir, 'nope'))).toBe(false);
  });

  it('the option is validated, and accepted by the provider', async () => {
    await expect(
      FileMessageJournal.open({ path: dir, readOnly: 'yes' as unknown as boolean }),
    ).rejects.toThrow(TypeError);
    expect(provider.validateOptions?.('journal', { path: dir, readOnly: true })).toEqual([]);
    expect(provider.validateOptions?.('journal', { path: dir, readOnly: 1 })).not.toEqual([]);
    await writeSome();
    const persistence = await createPersistence({
      journal: { provider: 'file', path: dir, readOnly: true, ioThreads: 1 },
      snapshots: { provider: 'memory' },
    });
    expect(await persistence.journal.highestSequenceNr('a')).toBe(30);
    await expect(persistence.journal.append('a', 1)).rejects.toMatchObject({ code: 'ERR_READ_ONLY' });
    await persistence.close();
  });

  it('beside a live writer in another process: sees every commit acknowledged before it opened', async () => {
    const child = spawnFixture('crash-appender.js', [dir, '4', '65536', 'fsync']);
    try {
      await waitForLine(child, 'ready');
      // Let it write, roll, truncate and compact for a while.
      await new Promise((resolve) => setTimeout(resolve, 700));
      for (let round = 0; round < 3; round++) {
        const acknowledged = new Map<string, number>();
        for (const line of child.output().split('\n')) {
          const [id, n] = line.split(' ');
          if (id?.startsWith('crash-') && n !== undefined) acknowledged.set(id, Number(n));
        }
        const { reports, reporter } = collectingReporter();
        const journal = await readOnly(dir, reporter);
        expect(reports.filter((r) => r.kind !== 'torn-tail-ignored')).toEqual([]);
        for (const [id, n] of acknowledged) {
          const events = await collect(journal.readFrom(id, 1));
          const seqs = events.map((e) => e.sequenceNr);
          expect(seqs.at(-1)!).toBeGreaterThanOrEqual(n);
          // Contiguous from its low-water mark, each event the one written with that number.
          expect(seqs).toEqual(seqs.map((_, i) => seqs[0]! + i));
          for (const e of events) expect((e.message as { n: number }).n).toBe(e.sequenceNr);
        }
        await journal.close();
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    } finally {
      await killed(child);
    }
  }, 30_000);
});
