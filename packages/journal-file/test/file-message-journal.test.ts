import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  type BatchedMessageJournal,
  createPersistence,
  isPersistenceError,
  JournalCorruptedError,
  JournalLockedError,
} from '@cairn/actor-core';
import { FileMessageJournal, FileSnapshotStore, provider } from '@cairn/journal-file';
import { lockFileName, ownerFileName } from '@cairn/snapshot';
import { encodeFrame, indexFileName } from '../src/record-codec';
import {
  collect,
  collectingReporter,
  flipByteAt,
  type RecordAt,
  readUntilError,
  recordsOf,
  segmentFiles,
  tempDir,
} from './journal-files';

// Type-level: the journal is a BatchedMessageJournal; if it stops being one, this stops compiling.
const _isBatched = (j: FileMessageJournal<string>): BatchedMessageJournal<string> => j;
void _isBatched;

const open = (dir: string, extra: Partial<Parameters<typeof FileMessageJournal.open>[0]> = {}) =>
  FileMessageJournal.open({ path: dir, ioThreads: 1, ...extra });

const messages = (n: number, tag = 'm') =>
  Array.from({ length: n }, (_, i) => ({ tag, i, note: 'n'.repeat(100) }));

describe('FileMessageJournal', () => {
  let dir: string;
  beforeEach(() => {
    dir = tempDir();
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the README example', async () => {
    const journal = await FileMessageJournal.open({ path: path.join(dir, 'data', 'journal') });
    await journal.append('account-42', { type: 'Deposited', amount: 10 });
    await journal.appendBatch('account-42', [
      { type: 'Deposited', amount: 1 },
      { type: 'Withdrawn', amount: 2 },
    ]);
    const read: Array<[number, unknown]> = [];
    for await (const entry of journal.readFrom('account-42', 1)) read.push([entry.sequenceNr, entry.message]);
    expect(read).toEqual([
      [1, { type: 'Deposited', amount: 10 }],
      [2, { type: 'Deposited', amount: 1 }],
      [3, { type: 'Withdrawn', amount: 2 }],
    ]);
    await journal.truncateBefore('account-42', 3);
    expect(await journal.highestSequenceNr('account-42')).toBe(3);
    expect((await collect(journal.readFrom('account-42', 1))).map((e) => e.sequenceNr)).toEqual([3]);
    await journal.close();
  });

  describe('options', () => {
    it.each([
      [undefined, TypeError],
      [{}, TypeError],
      [{ path: '' }, TypeError],
      [{ path: 'x', fsync: 'yes' }, TypeError],
      [{ path: 'x', segmentSize: 100 }, RangeError],
      [{ path: 'x', ioThreads: 0 }, RangeError],
      [{ path: 'x', lockStaleMs: 1.5 }, TypeError],
      [{ path: 'x', maxBatchSize: 0 }, RangeError],
    ])('%j is rejected with a typed error and creates nothing', async (options, type) => {
      const before = fs.readdirSync(process.cwd());
      await expect(FileMessageJournal.open(options as never)).rejects.toThrow(type);
      expect(fs.readdirSync(process.cwd())).toEqual(before);
    });

    it('creates a missing directory, with parents', async () => {
      const nested = path.join(dir, 'a', 'b');
      const journal = await open(nested);
      await journal.append('x', 1);
      await journal.close();
      expect(segmentFiles(nested)).toHaveLength(1);
    });
  });

  describe('the shared log', () => {
    it('commits concurrent appends of many ids together and reads each id back in order', async () => {
      const journal = await open(dir);
      await Promise.all(
        Array.from({ length: 50 }, async (_, id) => {
          for (let i = 0; i < 20; i++) await journal.append(`id-${id}`, { id, i });
        }),
      );
      for (let id = 0; id < 50; id++) {
        const read = await collect(journal.readFrom(`id-${id}`, 1));
        expect(read.map((e) => e.sequenceNr)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
        expect(read.map((e) => (e.message as { i: number }).i)).toEqual(
          Array.from({ length: 20 }, (_, i) => i),
        );
      }
      await journal.close();
      // One shared log: far fewer commits (frames) than appends.
      const frames = new Set(recordsOf(segmentFiles(dir)[0]!).map((r) => r.frameOffset));
      expect(frames.size).toBeLessThan(1000);
    });

    it('rolls segments, seals them with sidecar indexes, and reopens from the indexes', async () => {
      let journal = await open(dir, { segmentSize: 4096 });
      for (let i = 0; i < 30; i++) await journal.appendBatch(`id-${i % 3}`, messages(5, `b${i}`));
      await journal.close();
      const segments = segmentFiles(dir);
      expect(segments.length).toBeGreaterThan(3);
      for (const s of segments.slice(0, -1)) {
        expect(fs.existsSync(s.replace(/\.log$/, '.idx'))).toBe(true);
      }
      journal = await open(dir, { segmentSize: 4096 });
      for (let id = 0; id < 3; id++) {
        expect(await journal.highestSequenceNr(`id-${id}`)).toBe(50);
        const read = await collect(journal.readFrom(`id-${id}`, 1));
        expect(read.map((e) => e.sequenceNr)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
      }
      await journal.close();
    });

    it('rebuilds a missing or damaged sidecar index by scanning its segment', async () => {
      let journal = await open(dir, { segmentSize: 4096 });
      for (let i = 0; i < 20; i++) await journal.appendBatch('a', messages(5));
      await journal.close();
      const idx = segmentFiles(dir)[0]!.replace(/\.log$/, '.idx');
      fs.rmSync(idx);
      const second = segmentFiles(dir)[1]!.replace(/\.log$/, '.idx');
      flipByteAt(second, 40);
      journal = await open(dir, { segmentSize: 4096 });
      expect((await collect(journal.readFrom('a', 1))).length).toBe(100);
      await journal.close();
      expect(fs.existsSync(idx)).toBe(true);
    });

    it('numbers continue after reopen and each batch keeps consecutive numbers', async () => {
      let journal = await open(dir);
      expect(await journal.appendBatch('a', messages(3))).toEqual([1, 2, 3]);
      await journal.close();
      journal = await open(dir);
      expect(await journal.append('a', 'x')).toBe(4);
      expect(await journal.appendBatch('a', messages(2))).toEqual([5, 6]);
      await journal.close();
    });
  });

  describe('truncation', () => {
    it('hides entries at once, persists the mark, and keeps highestSequenceNr after reopen', async () => {
      let journal = await open(dir);
      await journal.appendBatch('a', messages(10));
      await journal.truncateBefore('a', 4);
      expect((await collect(journal.readFrom('a', 1))).map((e) => e.sequenceNr)).toEqual([
        4, 5, 6, 7, 8, 9, 10,
      ]);
      await journal.close();
      journal = await open(dir);
      expect((await collect(journal.readFrom('a', 1)))[0]?.sequenceNr).toBe(4);
      await journal.truncateBefore('a', Number.MAX_SAFE_INTEGER);
      expect(await collect(journal.readFrom('a', 1))).toEqual([]);
      await journal.close();
      journal = await open(dir);
      expect(await journal.highestSequenceNr('a')).toBe(10);
      expect(await journal.append('a', 'next')).toBe(11);
      expect((await collect(journal.readFrom('a', 1))).map((e) => e.sequenceNr)).toEqual([11]);
      await journal.close();
    });

    it('deletes segments that truncation left dead and the space comes back', async () => {
      let journal = await open(dir, { segmentSize: 4096 });
      for (let i = 0; i < 40; i++) await journal.appendBatch('dead', messages(5));
      await journal.append('alive', 'keep me');
      const before = segmentFiles(dir).length;
      expect(before).toBeGreaterThan(5);
      await journal.truncateBefore('dead', Number.MAX_SAFE_INTEGER);
      await journal.close(); // waits for the background deletion
      const after = segmentFiles(dir);
      expect(after.length).toBeLessThanOrEqual(2);
      expect(fs.readdirSync(dir).filter((n) => n.endsWith('.idx')).length).toBeLessThanOrEqual(1);
      journal = await open(dir, { segmentSize: 4096 });
      expect(await journal.highestSequenceNr('dead')).toBe(200);
      expect(await collect(journal.readFrom('dead', 1))).toEqual([]);
      expect((await collect(journal.readFrom('alive', 1))).map((e) => e.message)).toEqual(['keep me']);
      expect(await journal.append('dead', 'again')).toBe(201);
      await journal.close();
    });

    it('a read in progress when truncation deletes its segments ends cleanly', async () => {
      const journal = await open(dir, { segmentSize: 4096 });
      for (let i = 0; i < 30; i++) await journal.appendBatch('a', messages(10));
      const reading = journal.readFrom('a', 1)[Symbol.asyncIterator]();
      const first = await reading.next();
      expect(first.value?.sequenceNr).toBe(1);
      await journal.truncateBefore('a', Number.MAX_SAFE_INTEGER);
      await new Promise((resolve) => setTimeout(resolve, 300)); // background deletion
      const rest: number[] = [];
      for (let next = await reading.next(); !next.done; next = await reading.next())
        rest.push(next.value.sequenceNr);
      // What was already fetched may still come; nothing after it, and no error.
      expect(rest.length).toBeLessThan(299);
      await journal.close();
    });

    it('compacts segments that truncation left mostly dead, keeping every live event', async () => {
      const sizeOfLogs = () => segmentFiles(dir).reduce((sum, f) => sum + fs.statSync(f).size, 0);
      let journal = await open(dir, { segmentSize: 8192 });
      for (let i = 0; i < 40; i++) {
        await journal.append('keep', { i });
        await journal.appendBatch('drop', messages(4));
      }
      const before = sizeOfLogs();
      const segments = segmentFiles(dir).length;
      await journal.truncateBefore('drop', 150);
      // Reads stay right while compaction runs in the background.
      const reading = collect(journal.readFrom('keep', 1));
      await journal.compact();
      expect((await reading).map((e) => (e.message as { i: number }).i)).toEqual(
        Array.from({ length: 40 }, (_, i) => i),
      );
      expect((await collect(journal.readFrom('keep', 1))).length).toBe(40);
      await journal.close();
      // Every segment rewritten in place (each still holds live "keep" events); compact() also sealed the
      // one being written, which held dropped records, and started a fresh one.
      expect(segmentFiles(dir)).toHaveLength(segments + 1);
      expect(sizeOfLogs()).toBeLessThan(before / 2);
      for (let reopen = 0; reopen < 2; reopen++) {
        journal = await open(dir, { segmentSize: 8192 });
        expect((await collect(journal.readFrom('keep', 1))).length).toBe(40 + reopen);
        expect((await collect(journal.readFrom('drop', 1))).map((e) => e.sequenceNr)).toEqual(
          Array.from({ length: 11 }, (_, i) => 150 + i),
        );
        expect(await journal.highestSequenceNr('drop')).toBe(160);
        expect(await journal.append('keep', 'more')).toBe(41 + reopen);
        await journal.close();
        // Second round: the sidecar indexes are gone, so every segment is rescanned.
        for (const n of fs.readdirSync(dir)) if (n.endsWith('.idx')) fs.rmSync(path.join(dir, n));
      }
    });

    it('keeps a segment while any id still has live events in it', async () => {
      const journal = await open(dir, { segmentSize: 4096 });
      await journal.append('survivor', 'first');
      for (let i = 0; i < 40; i++) await journal.appendBatch('dead', messages(5));
      await journal.truncateBefore('dead', Number.MAX_SAFE_INTEGER);
      await journal.close();
      const reopened = await open(dir, { segmentSize: 4096 });
      expect((await collect(reopened.readFrom('survivor', 1))).map((e) => e.message)).toEqual(['first']);
      await reopened.close();
    });
  });

  describe('torn writes', () => {
    it('cuts a torn batch off whole on reopen, with a report', async () => {
      let journal = await open(dir);
      await journal.appendBatch('a', messages(3));
      await journal.close();
      const [file] = segmentFiles(dir);
      const goodSize = fs.statSync(file!).size;
      // The next commit, a batch of 3, written only partly: the crash hit mid-write.
      const frame = encodeFrame(
        [
          {
            persistenceId: 'a',
            events: [4, 5, 6].map((sequenceNr) => ({
              sequenceNr,
              timestamp: Date.now(),
              serializerId: 2,
              payload: Buffer.from(JSON.stringify({ sequenceNr })),
            })),
          },
        ],
        4,
      ); // positions continue after the 3 events before
      for (const cut of [10, frame.bytes.length - 5, frame.bytes.length - 40]) {
        fs.appendFileSync(file!, frame.bytes.subarray(0, cut));
        const { reports, reporter } = collectingReporter();
        journal = await open(dir, { reporter });
        expect(reports.map((r) => r.kind)).toEqual(['torn-tail-repaired']);
        expect(reports[0]!.message).toContain(path.basename(file!));
        expect(await journal.highestSequenceNr('a')).toBe(3);
        expect((await collect(journal.readFrom('a', 1))).map((e) => e.sequenceNr)).toEqual([1, 2, 3]);
        await journal.close();
        expect(fs.statSync(file!).size).toBe(goodSize);
      }
      journal = await open(dir);
      expect(await journal.appendBatch('a', messages(2))).toEqual([4, 5]);
      await journal.close();
    });

    it('a segment torn while being created (partial header) is recreated; older data is kept', async () => {
      let journal = await open(dir);
      await journal.appendBatch('a', messages(2));
      await journal.close();
      const torn = path.join(dir, '0000000000000002.log');
      fs.writeFileSync(torn, Buffer.from('CAIRNS'));
      journal = await open(dir);
      expect(await journal.append('a', 'next')).toBe(3);
      expect((await collect(journal.readFrom('a', 1))).map((e) => e.sequenceNr)).toEqual([1, 2, 3]);
      await journal.close();
      expect(fs.statSync(torn).size).toBeGreaterThan(32);
    });

    it('a flipped byte in the last commit is a torn tail: cut back with a report', async () => {
      let journal = await open(dir);
      await journal.append('a', 'one');
      await journal.append('a', 'two');
      await journal.close();
      const [file] = segmentFiles(dir);
      const last = recordsOf(file!).at(-1)!;
      flipByteAt(file!, last.payloadOffset);
      const { reports, reporter } = collectingReporter();
      journal = await open(dir, { reporter });
      expect(reports.map((r) => r.kind)).toEqual(['torn-tail-repaired']);
      expect(reports[0]!.message).toContain(`offset ${last.frameOffset}`);
      expect((await collect(journal.readFrom('a', 1))).map((e) => e.message)).toEqual(['one']);
      await journal.close();
    });
  });

  describe('failed writes', () => {
    type Io = { run: (op: string, args: Record<string, unknown>, transfer?: boolean) => Promise<unknown> };
    /** Makes the next `op` on the journal's IO pool write part of its frame (if any) and then fail. */
    function failNext(journal: FileMessageJournal, ops: string[]): void {
      const io = (journal as unknown as { io: Io }).io;
      const real = io.run.bind(io);
      const pending = new Set(ops);
      io.run = async (op, args, transfer) => {
        if (!pending.delete(op)) return real(op, args, transfer);
        if (op === 'appendFrame') {
          const bytes = args.bytes as Uint8Array;
          await real(op, { ...args, bytes: bytes.subarray(0, Math.floor(bytes.length / 2)) }, false);
        }
        throw Object.assign(new Error(`EIO: simulated failure of ${op}`), { code: 'EIO' });
      };
    }

    it('a commit that fails mid-write is cut off before the next one; nothing of it is ever read', async () => {
      let journal = await open(dir);
      await journal.appendBatch('a', ['one', 'two']);
      failNext(journal, ['appendFrame']);
      await expect(journal.appendBatch('a', ['lost-1', 'lost-2'])).rejects.toMatchObject({
        code: 'ERR_STORAGE',
      });
      expect(await journal.highestSequenceNr('a')).toBe(2);
      expect(await journal.append('a', 'three')).toBe(3);
      await journal.close();
      const { reports, reporter } = collectingReporter();
      journal = await open(dir, { reporter });
      expect(reports).toEqual([]);
      expect((await collect(journal.readFrom('a', 1))).map((e) => e.message)).toEqual([
        'one',
        'two',
        'three',
      ]);
      await journal.close();
    });

    it('when even the undo fails, the journal refuses further writes until reopened', async () => {
      let journal = await open(dir);
      await journal.append('a', 'one');
      failNext(journal, ['appendFrame', 'truncateFile']);
      await expect(journal.append('a', 'lost')).rejects.toMatchObject({ code: 'ERR_STORAGE' });
      await expect(journal.append('b', 'refused')).rejects.toThrow(/reopen/);
      expect((await collect(journal.readFrom('a', 1))).map((e) => e.message)).toEqual(['one']);
      await journal.close();
      // Reopening cuts the half-written commit as a torn tail: it was never acknowledged.
      const { reports, reporter } = collectingReporter();
      journal = await open(dir, { reporter });
      expect(reports.map((r) => r.kind)).toEqual(['torn-tail-repaired']);
      expect(await journal.append('b', 'accepted')).toBe(1);
      expect((await collect(journal.readFrom('a', 1))).map((e) => e.message)).toEqual(['one']);
      await journal.close();
    });
  });

  describe('corruption', () => {
    it('a flipped byte in a middle record fails reads of that id at that point, naming file, offset and seq', async () => {
      let journal = await open(dir);
      for (let i = 0; i < 5; i++) {
        await journal.append('a', `a${i}`);
        await journal.append('b', `b${i}`);
      }
      await journal.close();
      const [file] = segmentFiles(dir);
      const size = fs.statSync(file!).size;
      const target = recordsOf(file!).find((r) => r.persistenceId === 'a' && r.sequenceNr === 3)!;
      flipByteAt(file!, target.payloadOffset + 1);
      const { reports, reporter } = collectingReporter();
      journal = await open(dir, { reporter });
      expect(reports.map((r) => r.kind)).toEqual(['corruption-found']);
      const { served, error } = await readUntilError(journal.readFrom('a', 1));
      expect(served.map((e) => e.sequenceNr)).toEqual([1, 2]);
      expect(error).toBeInstanceOf(JournalCorruptedError);
      const e = error as JournalCorruptedError;
      expect(e).toMatchObject({ file, offset: target.offset, persistenceId: 'a', sequenceNr: 3 });
      expect(e.message).toContain(`${file} at offset ${target.offset}`);
      // Nothing past it is served, also when reading from beyond it.
      await expect(collect(journal.readFrom('a', 4))).rejects.toMatchObject({ sequenceNr: 3 });
      // Other ids are unaffected; nothing was deleted or cut.
      expect((await collect(journal.readFrom('b', 1))).length).toBe(5);
      expect((await collect(journal.readFrom('a', 1, { toSequenceNr: 2 }))).length).toBe(2);
      await journal.close();
      expect(fs.statSync(file!).size).toBe(size);
    });

    it('a record that verifies but cannot be decoded is named with its exact offset', async () => {
      let journal = await open(dir);
      await journal.appendBatch('a', ['one', 'two']);
      await journal.close();
      const [file] = segmentFiles(dir);
      const offset = fs.statSync(file!).size;
      // A whole, checksummed commit whose payload is cut-short MessagePack (an array of 2 holding 1).
      const payload = Buffer.from([0x92, 0x01]);
      const frame = encodeFrame(
        [
          {
            persistenceId: 'a',
            events: [{ sequenceNr: 3, timestamp: Date.now(), serializerId: 1, payload }],
          },
        ],
        3,
      );
      fs.appendFileSync(file!, frame.bytes);
      journal = await open(dir);
      const { served, error } = await readUntilError(journal.readFrom('a', 1));
      expect(served.map((e) => e.message)).toEqual(['one', 'two']);
      expect(error).toMatchObject({
        name: 'JournalCorruptedError',
        file,
        offset: offset + 16,
        sequenceNr: 3,
      });
      expect((error as Error).message).toContain('cannot be decoded');
      await journal.close();
    });

    it('truncating past a corrupt record makes the id readable again, also after reopen', async () => {
      let journal = await open(dir);
      for (let i = 0; i < 4; i++) await journal.append('a', `a${i}`);
      await journal.append('b', 'other');
      await journal.close();
      const [file] = segmentFiles(dir);
      const target = recordsOf(file!).find((r) => r.persistenceId === 'a' && r.sequenceNr === 2)!;
      flipByteAt(file!, target.payloadOffset);
      journal = await open(dir, { reporter: () => undefined });
      await expect(collect(journal.readFrom('a', 1))).rejects.toMatchObject({ sequenceNr: 2 });
      await journal.truncateBefore('a', 3);
      expect((await collect(journal.readFrom('a', 1))).map((e) => e.message)).toEqual(['a2', 'a3']);
      await journal.close();
      journal = await open(dir, { reporter: () => undefined });
      expect((await collect(journal.readFrom('a', 1))).map((e) => e.message)).toEqual(['a2', 'a3']);
      await journal.close();
    });

    it('corruption in a sealed segment is caught when read, with file, offset and seq', async () => {
      let journal = await open(dir, { segmentSize: 4096 });
      for (let i = 0; i < 30; i++) await journal.append('a', { i, pad: 'x'.repeat(100) });
      await journal.close();
      const [first] = segmentFiles(dir);
      expect(fs.existsSync(path.join(dir, indexFileName(1)))).toBe(true);
      const target = recordsOf(first!)[4]!;
      flipByteAt(first!, target.payloadOffset + 3);
      journal = await open(dir, { segmentSize: 4096 });
      const { served, error } = await readUntilError(journal.readFrom('a', 1));
      expect(served.length).toBe(target.sequenceNr - 1);
      expect(error).toMatchObject({
        name: 'JournalCorruptedError',
        file: first,
        offset: target.offset,
        persistenceId: 'a',
        sequenceNr: target.sequenceNr,
      });
      expect(isPersistenceError(error, 'ERR_JOURNAL_CORRUPTED')).toBe(true);
      await journal.close();
    });

    it.each([
      ['a payload byte', (r: RecordAt) => r.payloadOffset + 5],
      ['a header byte (the record length)', (r: RecordAt) => r.offset + 1],
      ['a persistenceId byte', (r: RecordAt) => r.offset + 32],
    ])(
      'in a large read, checked by the IO thread: %s flipped is named exactly and nothing past it is served',
      async (_what, where) => {
        // ~400 KiB of one id in a sealed segment: reads of it come in chunks of 256 KiB, which an IO
        // thread reads and checks (the small reads above are checked on the main thread).
        let journal = await open(dir, { segmentSize: 1024 * 1024 });
        for (let i = 0; i < 8; i++) await journal.appendBatch('big', messages(250, `b${i}`));
        // Then enough of another id to roll the segment, which seals the first (index, no scan on open).
        for (let i = 0; i < 6; i++) await journal.appendBatch('filler', messages(1000, `f${i}`));
        await journal.close();
        const [first] = segmentFiles(dir);
        expect(fs.existsSync(path.join(dir, indexFileName(1)))).toBe(true);
        const target = recordsOf(first!).find((r) => r.persistenceId === 'big' && r.sequenceNr === 1700)!;
        flipByteAt(first!, where(target));
        journal = await open(dir, { segmentSize: 1024 * 1024 });
        const { served, error } = await readUntilError(journal.readFrom('big', 1));
        expect(served.map((e) => e.sequenceNr)).toEqual(Array.from({ length: 1699 }, (_, i) => i + 1));
        expect(served[1698]!.message).toEqual({ tag: 'b6', i: 198, note: 'n'.repeat(100) });
        expect(error).toMatchObject({
          name: 'JournalCorruptedError',
          file: first,
          offset: target.offset,
          persistenceId: 'big',
          sequenceNr: 1700,
        });
        // From beyond it, and from inside the first chunk: the same record is named.
        await expect(collect(journal.readFrom('big', 1800))).rejects.toMatchObject({ sequenceNr: 1700 });
        expect((await collect(journal.readFrom('big', 1, { toSequenceNr: 1699 }))).length).toBe(1699);
        await journal.close();
      },
    );

    it('a damaged frame header mid-log is named and the ids that lost records stop at the hole', async () => {
      let journal = await open(dir);
      for (let i = 0; i < 4; i++) await journal.append('a', i);
      await journal.append('b', 'after');
      await journal.close();
      const [file] = segmentFiles(dir);
      const target = recordsOf(file!).find((r) => r.persistenceId === 'a' && r.sequenceNr === 2)!;
      flipByteAt(file!, target.frameOffset + 5); // the frame's length: the frame cannot even be delimited
      const { reports, reporter } = collectingReporter();
      journal = await open(dir, { reporter });
      expect(reports.map((r) => r.kind)).toEqual(['corruption-found']);
      const { served, error } = await readUntilError(journal.readFrom('a', 1));
      expect(served.map((e) => e.sequenceNr)).toEqual([1]);
      expect(error).toMatchObject({ name: 'JournalCorruptedError', persistenceId: 'a', sequenceNr: 2, file });
      expect(await journal.highestSequenceNr('a')).toBe(4);
      await journal.close();
    });

    it('a sealed segment whose header is not a Cairn segment refuses to open, naming it', async () => {
      let journal = await open(dir, { segmentSize: 4096 });
      for (let i = 0; i < 20; i++) await journal.appendBatch('a', messages(5));
      await journal.close();
      const [first] = segmentFiles(dir);
      fs.rmSync(first!.replace(/\.log$/, '.idx'));
      flipByteAt(first!, 2);
      await expect(open(dir)).rejects.toMatchObject({
        name: 'JournalCorruptedError',
        file: first,
        offset: 0,
      });
      flipByteAt(first!, 2);
      journal = await open(dir);
      expect(await journal.highestSequenceNr('a')).toBe(100);
      await journal.close();
    });

    it('a damaged checkpoint refuses to open rather than forget truncations', async () => {
      let journal = await open(dir, { segmentSize: 4096 });
      for (let i = 0; i < 20; i++) await journal.appendBatch('a', messages(5));
      await journal.truncateBefore('a', 90);
      await journal.close();
      const checkpoint = path.join(dir, 'checkpoint');
      expect(fs.existsSync(checkpoint)).toBe(true);
      flipByteAt(checkpoint, 20);
      await expect(open(dir)).rejects.toMatchObject({ name: 'JournalCorruptedError', file: checkpoint });
      // The failed open released everything: the lock is free again.
      flipByteAt(checkpoint, 20);
      journal = await open(dir);
      expect((await collect(journal.readFrom('a', 1)))[0]?.sequenceNr).toBe(90);
      await journal.close();
    });

    it('a segment lost outside the journal refuses to open, naming it; one the journal deleted does not', async () => {
      let journal = await open(dir, { segmentSize: 4096 });
      for (let i = 0; i < 30; i++) await journal.appendBatch(`id-${i % 3}`, messages(3));
      await journal.close();
      const segments = segmentFiles(dir);
      expect(segments.length).toBeGreaterThan(3);
      const lost = segments[1]!;
      const saved = fs.readFileSync(lost);
      fs.rmSync(lost);
      await expect(open(dir)).rejects.toMatchObject({ name: 'JournalCorruptedError', file: lost, offset: 0 });
      fs.writeFileSync(lost, saved);
      journal = await open(dir, { segmentSize: 4096 });
      for (let i = 0; i < 3; i++) await journal.truncateBefore(`id-${i}`, Number.MAX_SAFE_INTEGER);
      await journal.compact();
      await journal.close();
      expect(segmentFiles(dir).length).toBeLessThan(segments.length);
      journal = await open(dir, { segmentSize: 4096 });
      expect(await journal.highestSequenceNr('id-0')).toBe(30);
      await journal.close();
    });
  });

  describe('locking', () => {
    it('a second open of the same directory in this process is refused, naming this pid', async () => {
      const journal = await open(dir);
      const error = await open(dir).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(JournalLockedError);
      expect((error as JournalLockedError).holder.pid).toBe(process.pid);
      expect((error as JournalLockedError).message).toContain(`pid ${process.pid}`);
      await journal.close();
      const again = await open(dir);
      await again.close();
    });
    it('a lock held from another host is waited out until stale, then taken over with a report', async () => {
      fs.mkdirSync(path.join(dir, lockFileName('journal')));
      const since = new Date(Date.now() - 60_000).toISOString();
      fs.writeFileSync(
        path.join(dir, ownerFileName('journal')),
        JSON.stringify({ pid: 4242, host: 'elsewhere', since }),
      );
      const refused = await open(dir, { lockStaleMs: 2000 }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(JournalLockedError);
      expect((refused as JournalLockedError).holder).toMatchObject({ pid: 4242, since: new Date(since) });
      // The holder stopped refreshing the lock 3 s ago: stale.
      const past = new Date(Date.now() - 3000);
      fs.utimesSync(path.join(dir, lockFileName('journal')), past, past);
      const { reports, reporter } = collectingReporter();
      const journal = await open(dir, { lockStaleMs: 2000, reporter });
      expect(reports.map((r) => r.kind)).toEqual(['stale-lock-taken']);
      expect(reports[0]!.message).toContain('pid 4242 on elsewhere');
      await journal.close();
    });

    it('a lock left by a process of this machine that no longer runs is taken over at once', async () => {
      const journal = await open(dir);
      const owner = JSON.parse(fs.readFileSync(path.join(dir, ownerFileName('journal')), 'utf8'));
      await journal.close();
      if (!owner.process) return; // not Linux: only staleness applies
      // As if a process (same machine, same pid namespace, other start time) had died holding it.
      fs.mkdirSync(path.join(dir, lockFileName('journal')));
      const dead = { ...owner, process: { ...owner.process, startTime: '1' } };
      fs.writeFileSync(path.join(dir, ownerFileName('journal')), JSON.stringify(dead));
      const { reports, reporter } = collectingReporter();
      const again = await open(dir, { reporter });
      expect(reports.map((r) => r.kind)).toEqual(['stale-lock-taken']);
      await again.close();
    });
  });

  describe('scale', () => {
    it('100,000 ids: appended, listed, reopened, with a handful of file descriptors', async () => {
      const fdsBefore = fs.readdirSync('/proc/self/fd').length;
      let journal = await open(dir, { fsync: false });
      const n = 100_000;
      for (let base = 0; base < n; base += 10_000) {
        await Promise.all(
          Array.from({ length: 10_000 }, (_, i) => journal.append(`id-${base + i}`, base + i)),
        );
      }
      expect(fs.readdirSync('/proc/self/fd').length - fdsBefore).toBeLessThan(20);
      await journal.close();
      journal = await open(dir, { fsync: false });
      let count = 0;
      for await (const _ of journal.persistenceIds()) count++;
      expect(count).toBe(n);
      for (const i of [0, 12_345, 99_999]) {
        expect(await journal.highestSequenceNr(`id-${i}`)).toBe(1);
        expect((await collect(journal.readFrom(`id-${i}`, 1)))[0]?.message).toBe(i);
      }
      await journal.close();
    }, 120_000);
  });

  describe('provider', () => {
    it('is named "file" and validates options', () => {
      expect(provider.name).toBe('file');
      expect(provider.validateOptions?.('journal', { path: 'x', fsync: true, segmentSize: 1 << 20 })).toEqual(
        [],
      );
      const problems = provider.validateOptions?.('journal', {
        path: 'x',
        fsync: 'no',
        nope: 1,
        ioThreads: 0,
      });
      expect(problems).toHaveLength(3);
      expect(provider.validateOptions?.('snapshots', { path: 'x', segmentSize: 4096 })).toHaveLength(1);
    });

    it('createPersistence with provider "file" gives a FileMessageJournal and a FileSnapshotStore', async () => {
      const persistence = await createPersistence({
        journal: { provider: 'file', path: path.join(dir, 'journal'), ioThreads: 1 },
        snapshots: { provider: 'file', path: path.join(dir, 'snapshots'), ioThreads: 1 },
      } as never);
      try {
        expect(persistence.journal).toBeInstanceOf(FileMessageJournal);
        expect(persistence.snapshots).toBeInstanceOf(FileSnapshotStore);
        await persistence.journal.append('p', 'hello');
        await persistence.snapshots.save('p', 1, { state: 1 });
        expect((await persistence.snapshots.loadLatest('p'))?.sequenceNr).toBe(1);
      } finally {
        await persistence.close();
      }
    });
  });
});
