import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  crc32,
  createPersistence,
  type EventEnvelope,
  isPersistenceError,
  JournalCorruptedError,
  jsonSerializer,
} from '@cairn/actor-core';
import { FileMessageJournal } from '@cairn/journal-file';
import { collect, segmentFiles, tempDir } from './journal-files';

const open = (dir: string, extra: Partial<Parameters<typeof FileMessageJournal.open>[0]> = {}) =>
  FileMessageJournal.open({ path: dir, ioThreads: 1, ...extra });

const keys = (events: readonly EventEnvelope<unknown>[]) =>
  events.map((e) => `${e.persistenceId}#${e.sequenceNr}`);

/** A segment as format 1 wrote it (before events had positions and tags): kind-1 records, version 1. */
function formatOneSegment(
  number: number,
  frames: ReadonlyArray<ReadonlyArray<[string, number, unknown]>>,
): Buffer {
  const header = Buffer.alloc(32);
  header.write('CAIRNSEG', 0, 'latin1');
  header.writeUInt32LE(1, 8);
  header.writeDoubleLE(number, 16);
  header.writeUInt32LE(crc32(header.subarray(0, 28)), 28);
  const out = [header];
  for (const records of frames) {
    const bodies = records.map(([id, sequenceNr, message]) => {
      const idBytes = Buffer.from(id, 'utf8');
      const payload = Buffer.from(jsonSerializer.encode(message));
      const record = Buffer.alloc(32 + idBytes.length + payload.length);
      record.writeUInt32LE(record.length, 0);
      record.writeUInt8(1, 8);
      record.writeUInt16LE(jsonSerializer.id, 10);
      record.writeUInt16LE(idBytes.length, 12);
      record.writeDoubleLE(sequenceNr, 16);
      record.writeDoubleLE(1_700_000_000_000 + sequenceNr, 24);
      idBytes.copy(record, 32);
      payload.copy(record, 32 + idBytes.length);
      record.writeUInt32LE(crc32(record.subarray(8)), 4);
      return record;
    });
    const body = Buffer.concat(bodies);
    const frame = Buffer.alloc(16);
    frame.writeUInt32LE(0x314d4643, 0);
    frame.writeUInt32LE(body.length, 4);
    frame.writeUInt32LE(records.length, 8);
    frame.writeUInt32LE(crc32(frame.subarray(0, 12)), 12);
    out.push(frame, body);
  }
  return Buffer.concat(out);
}

describe('FileMessageJournal queries', () => {
  let dir: string;
  beforeEach(() => {
    dir = tempDir();
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the head never goes back: an offset of the last event stays valid after it is truncated and the journal reopened', async () => {
    // Found by the query model test: append, truncate all of the id, reopen; the head was recomputed
    // from the surviving events only, so the offset before fell past it (a TypeError on resume).
    for (const extra of [{ fsync: false, segmentSize: 4096 }, {}]) {
      const at = path.join(dir, `j-${Object.keys(extra).length}`);
      let journal = await open(at, extra);
      await journal.append('a', 'kept');
      await journal.append('b', 'gone');
      const offset = await journal.headOffset();
      await journal.truncateBefore('b', Number.MAX_SAFE_INTEGER);
      await journal.close();
      journal = await open(at, extra);
      expect(await journal.headOffset()).toBe(offset);
      expect(await collect(journal.allEvents({ after: offset }))).toEqual([]);
      await journal.append('c', 'next');
      expect(keys(await collect(journal.allEvents({ after: offset })))).toEqual(['c#1']);
      await journal.close();
    }
  });

  it('reads format-1 data: tags [], positions by physical order fixed at the first open, new events after', async () => {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(
      path.join(dir, '0000000000000001.log'),
      formatOneSegment(1, [
        [
          ['a', 1, 'a1'],
          ['a', 2, 'a2'],
          ['b', 1, 'b1'],
        ],
        [['a', 3, 'a3']],
        [
          ['b', 2, 'b2'],
          ['c', 1, 'c1'],
        ],
      ]),
    );
    let journal = await open(dir);
    expect((await collect(journal.readFrom('a', 1))).map((e) => [e.message, e.tags])).toEqual([
      ['a1', []],
      ['a2', []],
      ['a3', []],
    ]);
    const before = await collect(journal.allEvents());
    expect(keys(before)).toEqual(['a#1', 'a#2', 'b#1', 'a#3', 'b#2', 'c#1']);
    await journal.appendBatch('b', ['b3', 'b4'], { tags: ['new'] });
    // Appends went to a new, format-2 segment: a build that reads only format 1 refuses the directory.
    const files = segmentFiles(dir);
    expect(files).toHaveLength(2);
    expect(fs.readFileSync(files[1]!).readUInt32LE(8)).toBe(2);
    await journal.truncateBefore('a', 3);
    await journal.compact(); // segment 1 is sparse now: rewritten with its live records grouped by id
    const after = await collect(journal.allEvents());
    expect(keys(after)).toEqual(['b#1', 'a#3', 'b#2', 'c#1', 'b#3', 'b#4']);
    expect(after.map((e) => e.offset)).toEqual([
      ...before.slice(2).map((e) => e.offset),
      ...after.slice(4).map((e) => e.offset),
    ]);
    await journal.close();
    journal = await open(dir);
    const reopened = await collect(journal.allEvents());
    expect(reopened.map((e) => e.offset)).toEqual(after.map((e) => e.offset));
    expect(keys(await collect(journal.eventsByTag('new')))).toEqual(['b#3', 'b#4']);
    expect(keys(await collect(journal.allEvents({ after: before[1]!.offset })))).toEqual(keys(after));
    await journal.close();
  });

  it('compaction and segment deletion keep positions, tags and offsets', async () => {
    let journal = await open(dir, { segmentSize: 4096 });
    for (let round = 0; round < 30; round++) {
      await journal.append('keep', { round }, { tags: ['kept', `r${round % 3}`] });
      await journal.appendBatch('drop', [{ round, pad: 'x'.repeat(200) }, { round }]);
    }
    const before = (await collect(journal.allEvents())).filter((e) => e.persistenceId === 'keep');
    const byTag = await collect(journal.eventsByTag('r1'));
    await journal.truncateBefore('drop', Number.MAX_SAFE_INTEGER);
    await journal.compact();
    const check = async (j: FileMessageJournal) => {
      const all = await collect(j.allEvents());
      expect(all.map((e) => e.offset)).toEqual(before.map((e) => e.offset));
      expect(all.map((e) => e.tags)).toEqual(before.map((e) => e.tags));
      expect((await collect(j.eventsByTag('r1'))).map((e) => e.offset)).toEqual(byTag.map((e) => e.offset));
    };
    await check(journal);
    await journal.close();
    journal = await open(dir, { segmentSize: 4096 });
    await check(journal);
    // Positions are never reused, even once the segments holding the last ones are gone.
    const head = await journal.headOffset();
    await journal.truncateBefore('keep', Number.MAX_SAFE_INTEGER);
    await journal.append('keep', 'next');
    await journal.compact();
    await journal.close();
    journal = await open(dir, { segmentSize: 4096 });
    expect((await collect(journal.allEvents({ after: head! }))).map((e) => e.message)).toEqual(['next']);
    await journal.close();
  });

  it('read-only: current queries read what was committed at open; a live query is refused', async () => {
    const writer = await open(dir);
    await writer.appendBatch('a', [1, 2], { tags: ['t'] });
    const reader = await open(dir, { readOnly: true });
    expect((await collect(reader.eventsByTag('t'))).map((e) => e.message)).toEqual([1, 2]);
    const error = await collect(reader.allEvents({ live: true })).catch((e: unknown) => e);
    expect(isPersistenceError(error, 'ERR_READ_ONLY')).toBe(true);
    expect((error as Error).message).toMatch(/live query/);
    await reader.close();
    await writer.close();
  });

  it('a record damaged under the global index is named, never skipped', async () => {
    const journal = await open(dir);
    await journal.appendBatch('a', ['one', 'two', 'three']);
    await journal.append('b', 'other');
    // Damaged on disk while the journal is open: the ordered read verifies what it reads.
    const [file] = segmentFiles(dir);
    const bytes = fs.readFileSync(file!);
    const at = bytes.indexOf(Buffer.from('two'));
    expect(at).toBeGreaterThan(0);
    bytes[at] = bytes[at]! ^ 0xff;
    fs.writeFileSync(file!, bytes);
    const error = await collect(journal.allEvents()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JournalCorruptedError);
    expect((error as JournalCorruptedError).persistenceId).toBe('a');
    expect((error as JournalCorruptedError).sequenceNr).toBe(2);
    expect((error as JournalCorruptedError).file).toBe(file);
    await journal.close();
  });
});

describe('the file OffsetStore', () => {
  let dir: string;
  beforeEach(() => {
    dir = tempDir();
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('keeps offsets per projection name in the journal directory, across reopen', async () => {
    const config = {
      journal: { provider: 'file', path: path.join(dir, 'journal'), ioThreads: 1 },
      snapshots: { provider: 'memory' },
    };
    let persistence = await createPersistence(config);
    const offsets = persistence.offsets!;
    expect(await offsets.load('balances')).toBeUndefined();
    await offsets.save('balances', 'o1');
    await offsets.save('balances', 'o2');
    await offsets.save('names/with spaces/ünïcode', 'o3');
    await persistence.close();
    await expect(offsets.load('balances')).rejects.toThrow(/closed/);
    persistence = await createPersistence(config);
    expect(await persistence.offsets!.load('balances')).toBe('o2');
    expect(await persistence.offsets!.load('names/with spaces/ünïcode')).toBe('o3');
    await expect(persistence.offsets!.save('', 'x')).rejects.toThrow(TypeError);
    await persistence.close();
    expect(fs.readdirSync(path.join(dir, 'journal', 'offsets')).filter((n) => n.endsWith('.tmp'))).toEqual(
      [],
    );
  });

  it('keeps projection records: names, statuses, offset deletion, one lock per name', async () => {
    const journal = await open(dir);
    const store = journal.offsetStore();
    await store.save('a', 'o1');
    await store.saveStatus('b', '{"state":"failed"}');
    expect(await store.names()).toEqual(['a', 'b']);
    expect(await store.loadStatus('b')).toBe('{"state":"failed"}');
    await store.deleteOffset('a');
    expect(await store.load('a')).toBeUndefined();
    expect(await store.projectionLocked('a')).toBe(false);
    const lock = await store.lockProjection('a');
    expect(await store.projectionLocked('a')).toBe(true);
    await expect(store.lockProjection('a')).rejects.toMatchObject({ code: 'ERR_JOURNAL_LOCKED' });
    await lock.release();
    expect(await store.projectionLocked('a')).toBe(false);
    await journal.close();
  });

  it('a damaged offset file is reported with its name, not read as "no offset"', async () => {
    const journal = await open(dir);
    const offsets = journal.offsetStore();
    await offsets.save('p', 'offset-1');
    const [name] = fs.readdirSync(path.join(dir, 'offsets'));
    const file = path.join(dir, 'offsets', name!);
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('offset-1', 'offset-2'));
    const error = await offsets.load('p').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JournalCorruptedError);
    expect((error as Error).message).toContain(file);
    await journal.close();
  });

  it('survives SIGKILL mid-save: the offset read back is one that was saved, never torn', async () => {
    const script = `
      const { FileMessageJournal } = require('@cairn/journal-file');
      (async () => {
        const journal = await FileMessageJournal.open({ path: ${JSON.stringify(dir)}, ioThreads: 1 });
        const offsets = journal.offsetStore();
        for (let i = 1; ; i++) {
          await offsets.save('p', 'offset-' + i + '-' + 'x'.repeat(i % 500));
          if (i === 5) process.stdout.write('ready\\n');
        }
      })();`;
    for (let round = 0; round < 3; round++) {
      const child = spawn(process.execPath, ['-e', script], {
        cwd: path.join(__dirname, '..'),
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
      await new Promise((resolve) => setTimeout(resolve, 30 + round * 40));
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
      const journal = await open(dir);
      const saved = await journal.offsetStore().load('p');
      expect(saved).toMatch(/^offset-(\d+)-x*$/);
      const i = Number(/^offset-(\d+)/.exec(saved!)![1]);
      expect(saved).toBe(`offset-${i}-${'x'.repeat(i % 500)}`);
      await journal.close();
    }
  });
});
