import * as fs from 'node:fs';
import * as path from 'node:path';
import { isPersistenceError, JournalCorruptedError, type PersistenceReport } from '@cairn/actor-core';
import { FileMessageJournal, QUARANTINE_DIR } from '@cairn/journal-file';
import { captureResources, expectNoLeakedResources } from '@cairn/testkit';
import {
  collect,
  collectingReporter,
  flipByteAt,
  readUntilError,
  recordsOf,
  segmentFiles,
  tempDir,
} from './journal-files';

/** What the journals opened by `open` reported (corruption found on open, ...), per test. */
let reported: PersistenceReport[] = [];
const open = (dir: string, extra: Partial<Parameters<typeof FileMessageJournal.open>[0]> = {}) =>
  FileMessageJournal.open<unknown>({
    path: dir,
    ioThreads: 1,
    fsync: false,
    reporter: (r) => reported.push(r),
    ...extra,
  });
const reportedKinds = () => reported.map((r) => r.kind);

/** The quarantine file's header line and the record bytes after it. */
function readQuarantine(file: string): { header: Record<string, unknown>; records: Buffer } {
  const bytes = fs.readFileSync(file);
  const newline = bytes.indexOf(0x0a);
  return { header: JSON.parse(bytes.toString('utf8', 0, newline)), records: bytes.subarray(newline + 1) };
}

describe('FileMessageJournal.repairAfterCorruption', () => {
  let dir: string;
  beforeEach(() => {
    dir = tempDir();
    reported = [];
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('cuts the id back to its last good record inside a batch, quarantines the bytes, keeps other ids', async () => {
    let journal = await open(dir);
    await journal.appendBatch('a', ['a1', 'a2']);
    await journal.append('b', 'b1');
    await journal.appendBatch('a', ['a3', 'a4', 'a5', 'a6']); // one run: the cut falls inside it
    await journal.append('b', 'b2');
    await journal.append('a', 'a7');
    await journal.close();
    const [file] = segmentFiles(dir);
    const records = recordsOf(file!);
    const bad = records.find((r) => r.persistenceId === 'a' && r.sequenceNr === 4)!;
    const deadOfA = records.filter((r) => r.persistenceId === 'a' && r.sequenceNr >= 4);
    const expected = Buffer.concat(
      deadOfA.map((r) => fs.readFileSync(file!).subarray(r.offset, r.offset + r.length)),
    );
    flipByteAt(file!, bad.payloadOffset + 1);
    const segmentBytes = fs.readFileSync(file!);

    journal = await open(dir);
    expect(reportedKinds()).toContain('corruption-found');
    await expect(collect(journal.readFrom('a', 1))).rejects.toMatchObject({ sequenceNr: 4 });
    const result = await journal.repairAfterCorruption('a');
    expect(result).toMatchObject({ keptThrough: 3, removed: { first: 4, last: 7 }, bytes: expected.length });
    expect(result.reason).toContain('CRC mismatch');
    expect(path.dirname(result.quarantine)).toBe(path.join(dir, QUARANTINE_DIR));
    const { header, records: quarantined } = readQuarantine(result.quarantine);
    expect(header).toMatchObject({ persistenceId: 'a', keptThrough: 3, removed: { first: 4, last: 7 } });
    // The bad record (left out of the runs by the open's scan), the rest of the batch, then a7's run.
    expect((header.ranges as unknown[]).length).toBe(3);
    // Byte for byte (with the flipped byte as it is on disk).
    const onDisk = Buffer.concat(deadOfA.map((r) => segmentBytes.subarray(r.offset, r.offset + r.length)));
    expect(quarantined.equals(onDisk)).toBe(true);
    expect(quarantined.equals(expected)).toBe(false);
    // The segment holding them is not touched: the cut is a recorded fact, not an edit.
    expect(fs.readFileSync(file!).equals(segmentBytes)).toBe(true);

    expect(await journal.highestSequenceNr('a')).toBe(3);
    expect((await collect(journal.readFrom('a', 1))).map((e) => e.message)).toEqual(['a1', 'a2', 'a3']);
    expect(await journal.append('a', 'new4')).toBe(4);
    expect(await journal.appendBatch('a', ['new5', 'new6'])).toEqual([5, 6]);
    expect((await collect(journal.readFrom('b', 1))).map((e) => e.message)).toEqual(['b1', 'b2']);
    await journal.close();

    // Durable: the same after reopening, with the dead records still on disk behind the new ones.
    const { reports, reporter } = collectingReporter();
    journal = await open(dir, { reporter });
    expect(await journal.highestSequenceNr('a')).toBe(6);
    expect((await collect(journal.readFrom('a', 1))).map((e) => e.message)).toEqual([
      'a1',
      'a2',
      'a3',
      'new4',
      'new5',
      'new6',
    ]);
    expect((await collect(journal.readFrom('b', 1))).map((e) => e.message)).toEqual(['b1', 'b2']);
    // The bad bytes are still in the segment: found by the scan, and named as already cut off.
    expect(reports.map((r) => r.message)).toEqual([expect.stringContaining('a repair already cut it off')]);
    expect(await journal.append('a', 'new7')).toBe(7);
    await journal.close();
  });

  it('refuses an id that reads back clean, or has no events, with a typed error, changing nothing', async () => {
    const journal = await open(dir);
    await journal.appendBatch('a', ['1', '2']);
    const before = segmentFiles(dir).map((f) => fs.readFileSync(f));
    await expect(journal.repairAfterCorruption('a')).rejects.toMatchObject({
      code: 'ERR_REPAIR_REFUSED',
      message: expect.stringContaining('reads back clean through sequenceNr 2'),
    });
    await expect(journal.repairAfterCorruption('nobody')).rejects.toMatchObject({
      code: 'ERR_REPAIR_REFUSED',
      message: expect.stringContaining('no events'),
    });
    await expect(journal.repairAfterCorruption('' as string)).rejects.toThrow(TypeError);
    expect(fs.existsSync(path.join(dir, QUARANTINE_DIR))).toBe(false);
    expect(segmentFiles(dir).map((f) => fs.readFileSync(f))).toEqual(before);
    expect(await journal.highestSequenceNr('a')).toBe(2);
    await journal.close();
    await expect(journal.repairAfterCorruption('a')).rejects.toMatchObject({ code: 'ERR_JOURNAL_CLOSED' });
  });

  it('a record the scan could not read (bad CRC found on open) is quarantined by the length its header states', async () => {
    let journal = await open(dir);
    for (let i = 1; i <= 4; i++) {
      await journal.append('a', `a${i}`);
      await journal.append('b', `b${i}`);
    }
    await journal.close();
    const [file] = segmentFiles(dir);
    const bad = recordsOf(file!).find((r) => r.persistenceId === 'a' && r.sequenceNr === 2)!;
    flipByteAt(file!, bad.payloadOffset);
    const { reports, reporter } = collectingReporter();
    journal = await open(dir, { reporter });
    expect(reports.map((r) => r.kind)).toEqual(['corruption-found']);
    const result = await journal.repairAfterCorruption('a');
    expect(result).toMatchObject({ keptThrough: 1, removed: { first: 2, last: 4 } });
    const { header, records } = readQuarantine(result.quarantine);
    const ranges = header.ranges as Array<{ offset: number; length: number; note?: string }>;
    expect(ranges[0]).toMatchObject({ offset: bad.offset, length: bad.length });
    expect(ranges[0]!.note).toContain('damaged record');
    expect(records.length).toBe(result.bytes);
    expect(await journal.append('a', 'again2')).toBe(2);
    await journal.close();

    const after = collectingReporter();
    journal = await open(dir, { reporter: after.reporter });
    // The bad bytes are still in the segment: reported, but as already cut off by the repair.
    expect(after.reports.map((r) => r.kind)).toEqual(['corruption-found']);
    expect(after.reports[0]!.message).toContain('a repair already cut it off');
    expect((await collect(journal.readFrom('a', 1))).map((e) => e.message)).toEqual(['a1', 'again2']);
    expect((await collect(journal.readFrom('b', 1))).length).toBe(4);
    await journal.close();
  });

  it('a hole left by a damaged frame is cut from the hole on; new events after a roll and a reopen', async () => {
    let journal = await open(dir, { segmentSize: 4096 });
    for (let i = 0; i < 4; i++) await journal.append('a', i);
    await journal.append('b', 'after');
    await journal.close();
    const [file] = segmentFiles(dir);
    const target = recordsOf(file!).find((r) => r.persistenceId === 'a' && r.sequenceNr === 2)!;
    flipByteAt(file!, target.frameOffset + 5);
    journal = await open(dir, { segmentSize: 4096 });
    expect(reportedKinds()).toContain('corruption-found');
    const result = await journal.repairAfterCorruption('a');
    expect(result).toMatchObject({ keptThrough: 1, removed: { first: 2, last: 4 } });
    // Enough new events to roll into later segments, so the repair's boundary is crossed on reopen.
    for (let i = 2; i <= 60; i++) expect(await journal.append('a', { i, pad: 'x'.repeat(100) })).toBe(i);
    await journal.close();
    journal = await open(dir, { segmentSize: 4096 });
    const read = await collect(journal.readFrom('a', 1));
    expect(read.map((e) => e.sequenceNr)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    expect(read[1]!.message).toEqual({ i: 2, pad: 'x'.repeat(100) });
    expect((await collect(journal.readFrom('b', 1))).map((e) => e.message)).toEqual(['after']);
    await journal.close();
  });

  it('survives compaction and deletion of the segments around it', async () => {
    let journal = await open(dir, { segmentSize: 4096 });
    await journal.appendBatch('a', ['a1', 'a2', 'a3']);
    for (let i = 0; i < 40; i++) await journal.append('filler', { i, pad: 'f'.repeat(100) });
    await journal.close();
    const [first] = segmentFiles(dir);
    const bad = recordsOf(first!).find((r) => r.persistenceId === 'a' && r.sequenceNr === 2)!;
    flipByteAt(first!, bad.payloadOffset);
    journal = await open(dir, { segmentSize: 4096 });
    await expect(journal.repairAfterCorruption('a')).resolves.toMatchObject({ keptThrough: 1 });
    await journal.append('a', 'new2');
    // Truncating the filler lets the journal delete or compact segments that hold a's dead records.
    await journal.truncateBefore('filler', 41);
    await journal.compact();
    await journal.close();
    journal = await open(dir, { segmentSize: 4096 });
    expect((await collect(journal.readFrom('a', 1))).map((e) => e.message)).toEqual(['a1', 'new2']);
    await journal.close();
  });

  it('a second repair of the same id later cuts again from its new first bad record', async () => {
    let journal = await open(dir);
    await journal.appendBatch('a', ['a1', 'a2', 'a3']);
    await journal.append('b', 'b1'); // so a's commit is not the last one (a bad last commit is a torn tail)
    await journal.close();
    let [file] = segmentFiles(dir);
    flipByteAt(
      file!,
      recordsOf(file!).find((r) => r.persistenceId === 'a' && r.sequenceNr === 3)!.payloadOffset,
    );
    journal = await open(dir);
    expect(reportedKinds()).toContain('corruption-found');
    await journal.repairAfterCorruption('a');
    await journal.appendBatch('a', ['n3', 'n4', 'n5']);
    await journal.append('b', 'b2');
    await journal.close();
    file = segmentFiles(dir).at(-1);
    const n4 = recordsOf(file!).find((r) => r.persistenceId === 'a' && r.sequenceNr === 4)!;
    flipByteAt(file!, n4.payloadOffset);
    journal = await open(dir);
    const { served, error } = await readUntilError(journal.readFrom('a', 1));
    expect(served.map((e) => e.message)).toEqual(['a1', 'a2', 'n3']);
    expect(error).toBeInstanceOf(JournalCorruptedError);
    await expect(journal.repairAfterCorruption('a')).resolves.toMatchObject({
      keptThrough: 3,
      removed: { first: 4, last: 5 },
    });
    expect(await journal.append('a', 'm4')).toBe(4);
    await journal.close();
    journal = await open(dir);
    expect((await collect(journal.readFrom('a', 1))).map((e) => e.message)).toEqual(['a1', 'a2', 'n3', 'm4']);
    expect(fs.readdirSync(path.join(dir, QUARANTINE_DIR))).toHaveLength(2);
    await journal.close();
  });

  it('a repair, then close, leaves no fd, thread, timer or lock behind', async () => {
    let journal = await open(dir);
    await journal.appendBatch('a', ['a1', 'a2', 'a3']);
    await journal.append('b', 'b1');
    await journal.close();
    const [file] = segmentFiles(dir);
    flipByteAt(
      file!,
      recordsOf(file!).find((r) => r.persistenceId === 'a' && r.sequenceNr === 2)!.payloadOffset,
    );
    const before = captureResources();
    journal = await open(dir, { reporter: () => undefined });
    await journal.repairAfterCorruption('a');
    await journal.append('a', 'again');
    await journal.close();
    await expectNoLeakedResources(before);
  });

  it('appends of the id issued during a repair wait for it and continue from the kept highest', async () => {
    let journal = await open(dir);
    await journal.appendBatch('a', ['a1', 'a2', 'a3']);
    await journal.append('b', 'b0');
    await journal.close();
    const [file] = segmentFiles(dir);
    flipByteAt(file!, recordsOf(file!).find((r) => r.sequenceNr === 2)!.payloadOffset);
    journal = await open(dir);
    expect(reportedKinds()).toContain('corruption-found');
    const repair = journal.repairAfterCorruption('a');
    const message = { v: 'as appended' };
    const append = journal.append('a', message);
    message.v = 'changed after the call'; // must not change what is stored, also while it waits
    const other = journal.append('b', 'b1');
    await expect(repair).resolves.toMatchObject({ keptThrough: 1 });
    expect(await append).toBe(2);
    expect(await other).toBe(2);
    expect((await collect(journal.readFrom('a', 2))).map((e) => e.message)).toEqual([{ v: 'as appended' }]);
    const again = await journal.repairAfterCorruption('a').catch((e: unknown) => e);
    expect(isPersistenceError(again, 'ERR_REPAIR_REFUSED')).toBe(true);
    await journal.close();
  });
});
