import { readFile, stat, truncate, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import {
  type AbstractMessageJournal,
  type AbstractSnapshotStore,
  canDelete,
  type JournalEntry,
} from '@cairn/actor-core';
import { DumpReader } from '@cairn/cli';
import { flipByte } from '@cairn/testkit';
import { cli, damageMarker, eventOf, layout, makeData, openData, stateOf, tempDir } from './cli-fixtures';

interface CopyJson {
  ids: Array<{
    persistenceId: string;
    eventsCopied: number;
    eventsAlreadyThere: number;
    snapshotsCopied: number;
    snapshotsAlreadyThere: number;
    notCopied?: string;
  }>;
  eventsCopied: number;
  snapshotsCopied: number;
  problems: unknown[];
  verified: { events: number; snapshots: number };
  ok: boolean;
}

function byId(result: CopyJson) {
  return Object.fromEntries(result.ids.map((i) => [i.persistenceId, i]));
}

/** Every event and the snapshots of an id read back through the backend, compared with what makeData wrote. */
async function expectOriginalData(
  config: Awaited<ReturnType<typeof layout>>,
  ids: Record<string, { first: number; highest: number; snapshots: number[] }>,
) {
  const { journal, snapshots, close } = await openData(config);
  try {
    for (const [id, want] of Object.entries(ids)) {
      expect(await journal.highestSequenceNr(id)).toBe(want.highest);
      const seqs: number[] = [];
      for await (const e of journal.readFrom(id, 1)) {
        seqs.push(e.sequenceNr);
        expect(isDeepStrictEqual(e.message, eventOf(id, e.sequenceNr))).toBe(true);
      }
      expect(seqs).toEqual(Array.from({ length: want.highest - want.first + 1 }, (_, i) => want.first + i));
      for (const seq of want.snapshots) {
        const s = await snapshots.loadLatest(id, { maxSequenceNr: seq });
        expect(s?.sequenceNr).toBe(seq);
        expect(isDeepStrictEqual(s?.state, stateOf(id, seq))).toBe(true);
      }
    }
  } finally {
    await close();
  }
}

describe('cairn copy', () => {
  let root: { dir: string; remove: () => Promise<void> };
  beforeEach(async () => {
    root = await tempDir();
  });
  afterEach(() => root.remove());

  test('file -> lmdb -> dump -> file round trip, verified at every step', async () => {
    const file = await layout(root.dir, 'file');
    await makeData(file);
    // acct-d: a snapshot at 3, then every event truncated (deleteEventsOnSnapshot): only its highest remains.
    const source = await openData(file);
    await source.journal.appendBatch(
      'acct-d',
      [1, 2, 3].map((s) => eventOf('acct-d', s)),
    );
    await source.snapshots.save('acct-d', 3, stateOf('acct-d', 3));
    await source.journal.truncateBefore('acct-d', 4);
    await source.close();
    const lmdb = await layout(root.dir, 'lmdb');
    const dump = path.join(root.dir, 'all.jsonl');
    const back = await layout(root.dir, 'file', 'file-again');
    const original = {
      'acct-a': { first: 1, highest: 30, snapshots: [10, 20] },
      'acct-b': { first: 1, highest: 12, snapshots: [12] },
      // Truncated ids keep their numbering: acct-c starts at 6, acct-d has no events and highest 3.
      'acct-c': { first: 6, highest: 20, snapshots: [5] },
      'acct-d': { first: 4, highest: 3, snapshots: [3] },
    };

    const toLmdb = await cli('copy', '--from', file.config, '--to', lmdb.config, '--json');
    expect(toLmdb.code).toBe(0);
    expect(JSON.parse(toLmdb.stdout)).toMatchObject({
      eventsCopied: 57,
      snapshotsCopied: 5,
      problems: [],
      verified: { events: 57, snapshots: 5 },
      ok: true,
    });
    await expectOriginalData(lmdb, original);

    const toDump = await cli('copy', '--from', lmdb.config, '--to-dump', dump);
    expect(toDump.stdout).toContain('4 id(s): 57 event(s) and 5 snapshot(s) copied');
    expect(toDump.stdout).toContain('verified: 57 event(s) and 5 snapshot(s) equal');
    expect(toDump.code).toBe(0);

    const toFile = await cli('copy', '--from-dump', dump, '--to', back.config, '--json');
    expect(toFile.code).toBe(0);
    expect(JSON.parse(toFile.stdout)).toMatchObject({ eventsCopied: 57, snapshotsCopied: 5, ok: true });

    await expectOriginalData(back, original);
    expect((await cli('verify', '--config', back.config)).code).toBe(0);
  });

  test('snapshots keep their timestamps through every copy (store, dump, store)', async () => {
    const file = await layout(root.dir, 'file');
    const old = Date.UTC(2020, 0, 2, 3, 4, 5);
    const source = await openData(file);
    await source.journal.appendBatch(
      'acct-t',
      [1, 2].map((s) => eventOf('acct-t', s)),
    );
    await (source.snapshots as AbstractSnapshotStore<unknown>).importSnapshot({
      persistenceId: 'acct-t',
      sequenceNr: 2,
      timestamp: old,
      state: stateOf('acct-t', 2),
    });
    await source.close();
    const lmdb = await layout(root.dir, 'lmdb');
    const dump = path.join(root.dir, 't.jsonl');
    const back = await layout(root.dir, 'file', 'file-again');
    expect((await cli('copy', '--from', file.config, '--to', lmdb.config)).code).toBe(0);
    expect((await cli('copy', '--from', lmdb.config, '--to-dump', dump)).code).toBe(0);
    expect((await cli('copy', '--from-dump', dump, '--to', back.config)).code).toBe(0);
    for (const target of [lmdb, back]) {
      const opened = await openData(target);
      try {
        const s = await opened.snapshots.loadLatest('acct-t');
        expect({ sequenceNr: s?.sequenceNr, timestamp: s?.timestamp }).toEqual({
          sequenceNr: 2,
          timestamp: old,
        });
      } finally {
        await opened.close();
      }
    }
    const listed = await cli('snapshots', 'acct-t', '--config', back.config);
    expect(listed.stdout).toContain('2\t2020-01-02T03:04:05.000Z');
  });

  test('tags go with every copy (store, dump, store), and the verification compares them', async () => {
    const file = await layout(root.dir, 'file');
    const source = await openData(file);
    await source.journal.append('acct-g', eventOf('acct-g', 1), { tags: ['bank', 'eu'] });
    await source.journal.append('acct-g', eventOf('acct-g', 2));
    await source.journal.append('acct-g', eventOf('acct-g', 3), { tags: ['bank'] });
    await source.close();
    const lmdb = await layout(root.dir, 'lmdb');
    const dump = path.join(root.dir, 'g.jsonl');
    const back = await layout(root.dir, 'file', 'file-again');
    for (const args of [
      ['--from', file.config, '--to', lmdb.config],
      ['--from', lmdb.config, '--to-dump', dump],
      ['--from-dump', dump, '--to', back.config],
    ]) {
      const run = await cli('copy', ...args, '--json');
      expect(JSON.parse(run.stdout)).toMatchObject({ eventsCopied: 3, ok: true });
      expect(run.code).toBe(0);
    }
    const reader = await DumpReader.open(dump);
    const dumped: JournalEntry[] = [];
    for await (const e of reader.readFrom('acct-g', 1)) dumped.push(e);
    await reader.close();
    expect(dumped.map((e) => e.tags)).toEqual([['bank', 'eu'], [], ['bank']]);
    for (const target of [lmdb, back]) {
      const opened = await openData(target);
      try {
        const tags: (readonly string[])[] = [];
        for await (const e of opened.journal.readFrom('acct-g', 1)) tags.push(e.tags);
        expect(tags).toEqual([['bank', 'eu'], [], ['bank']]);
      } finally {
        await opened.close();
      }
    }
    // A changed tag in the dump is a CRC mismatch, named.
    const text = await readFile(dump, 'utf8');
    await writeFile(dump, text.replace('["bank","eu"]', '["bank","us"]'));
    await expect(DumpReader.open(dump)).rejects.toThrow(/event CRC mismatch/);
  });

  test('a deleted id stays deleted through store-to-store copies: its marker lands at the same number', async () => {
    const file = await layout(root.dir, 'file');
    const source = await openData(file);
    await source.journal.appendBatch(
      'acct-x',
      [1, 2, 3].map((s) => eventOf('acct-x', s)),
      { tags: ['bank'] },
    );
    await source.journal.append('acct-y', eventOf('acct-y', 1));
    if (!canDelete(source.journal)) throw new Error('the file journal declares deletion');
    await source.journal.deletePersistenceId('acct-x');
    await source.close();
    const lmdb = await layout(root.dir, 'lmdb');
    const back = await layout(root.dir, 'file', 'file-again');
    for (const [from, to] of [
      [file, lmdb],
      [lmdb, back],
      [file, lmdb], // again: nothing changes, the marker is not written twice
    ] as const) {
      const run = await cli('copy', '--from', from.config, '--to', to.config, '--json');
      expect(JSON.parse(run.stdout)).toMatchObject({ ok: true });
      expect(run.code).toBe(0);
    }
    for (const target of [lmdb, back]) {
      const opened = await openData(target);
      try {
        expect(await opened.journal.highestSequenceNr('acct-x')).toBe(4);
        const records: unknown[] = [];
        for await (const e of opened.journal.readFrom('acct-x', 1, { deletions: true })) {
          records.push({ sequenceNr: e.sequenceNr, deleted: 'deleted' in e && e.deleted });
        }
        expect(records).toEqual([{ sequenceNr: 4, deleted: true }]);
        const alive: number[] = [];
        for await (const e of opened.journal.readFrom('acct-y', 1)) alive.push(e.sequenceNr);
        expect(alive).toEqual([1]);
      } finally {
        await opened.close();
      }
      // The target verifies clean: a deletion, not events gone missing.
      const verified = await cli('verify', '--config', target.config);
      expect(verified.code).toBe(0);
    }
  });

  test('a dump written before tags were kept (version 1) still reads, its events untagged', async () => {
    const { crc32, msgpackSerializer } = await import('@cairn/actor-core');
    const payload = Buffer.from(msgpackSerializer.encode({ n: 1 }));
    const crc = crc32(
      Buffer.concat([Buffer.from(JSON.stringify(['event', 'old-1', 1, 1700000000000])), payload]),
    );
    const dump = path.join(root.dir, 'v1.jsonl');
    await writeFile(
      dump,
      [
        JSON.stringify({ format: 'cairn-dump', version: 1, serializer: 'msgpack' }),
        JSON.stringify({
          type: 'event',
          persistenceId: 'old-1',
          sequenceNr: 1,
          timestamp: 1700000000000,
          message: payload.toString('base64'),
          crc,
        }),
        JSON.stringify({ type: 'end', events: 1, snapshots: 0, notCopied: [] }),
        '',
      ].join('\n'),
    );
    const reader = await DumpReader.open(dump);
    const read: JournalEntry[] = [];
    for await (const e of reader.readFrom('old-1', 1)) read.push(e);
    await reader.close();
    expect(read).toEqual([
      { persistenceId: 'old-1', sequenceNr: 1, timestamp: 1700000000000, message: { n: 1 }, tags: [] },
    ]);
  });

  test('a dump keeps truncated ids with their numbering and every timestamp', async () => {
    const file = await layout(root.dir, 'file');
    await makeData(file);
    const dump = path.join(root.dir, 'all.jsonl');
    const run = await cli('copy', '--from', file.config, '--to-dump', dump, '--json');
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ eventsCopied: 57, snapshotsCopied: 4, ok: true });
    const reader = await DumpReader.open(dump);
    const { journal, close } = await openData(file);
    try {
      expect(await reader.highestSequenceNr('acct-c')).toBe(20);
      const original = [];
      for await (const e of journal.readFrom('acct-c', 1)) original.push(e);
      const dumped = [];
      for await (const e of reader.readFrom('acct-c', 1)) dumped.push(e);
      expect(dumped.map((e) => [e.sequenceNr, e.timestamp])).toEqual(
        original.map((e) => [e.sequenceNr, e.timestamp]),
      );
      expect(dumped[0]!.message).toEqual(eventOf('acct-c', 6));
      expect(dumped[0]!.message).toHaveProperty('at', new Date(1_700_000_000_006));
    } finally {
      await close();
      await reader.close();
    }
  });

  test('resumes into a journal after an interrupted copy: appends only what is missing, never twice', async () => {
    const file = await layout(root.dir, 'file');
    await makeData(file);
    const lmdb = await layout(root.dir, 'lmdb');
    // The state an interrupted copy leaves: acct-a's first chunks and its older snapshot, nothing of acct-b.
    // The copy imports events with their source timestamps, so the interrupted part is what it wrote: the
    // source's first 12 events as they are.
    const source = await openData(file);
    const firstTwelve: JournalEntry[] = [];
    for await (const e of source.journal.readFrom('acct-a', 1, { max: 12 })) firstTwelve.push(e);
    const snapshotAt10 = await source.snapshots.loadLatest('acct-a', { maxSequenceNr: 10 });
    await source.close();
    const target = await openData(lmdb);
    await (target.journal as AbstractMessageJournal).importEntries('acct-a', firstTwelve);
    // Snapshots too are copied with their timestamps.
    await (target.snapshots as AbstractSnapshotStore<unknown>).importSnapshot(snapshotAt10!);
    await target.close();

    const run = await cli('copy', '--from', file.config, '--to', lmdb.config, '--chunk', '5', '--json');
    const result: CopyJson = JSON.parse(run.stdout);
    expect(byId(result)['acct-a']).toMatchObject({
      eventsCopied: 18,
      eventsAlreadyThere: 12,
      snapshotsCopied: 1,
      snapshotsAlreadyThere: 1,
    });
    expect(byId(result)['acct-b']).toMatchObject({
      eventsCopied: 12,
      eventsAlreadyThere: 0,
      snapshotsCopied: 1,
    });
    expect(result.problems).toEqual([]);
    // acct-c too, whose events start at 6 (truncated below).
    expect(result.verified).toEqual({ events: 57, snapshots: 4, inGlobalOrder: 57 });

    // Again: nothing left to do.
    const again: CopyJson = JSON.parse(
      (await cli('copy', '--from', file.config, '--to', lmdb.config, '--json')).stdout,
    );
    expect(again).toMatchObject({
      eventsCopied: 0,
      snapshotsCopied: 0,
      problems: [],
      verified: { events: 57, snapshots: 4 },
    });
    await expectOriginalData(lmdb, {
      'acct-a': { first: 1, highest: 30, snapshots: [10, 20] },
      'acct-b': { first: 1, highest: 12, snapshots: [12] },
    });
  });

  test('refuses to append to a target that holds another history of an id', async () => {
    const file = await layout(root.dir, 'file');
    await makeData(file);
    const lmdb = await layout(root.dir, 'lmdb');
    const target = await openData(lmdb);
    await target.journal.appendBatch('acct-b', [{ something: 'else' }]);
    await target.journal.appendBatch(
      'acct-a',
      Array.from({ length: 31 }, (_, i) => eventOf('acct-a', i + 1)),
    );
    await target.close();
    const run = await cli('copy', '--from', file.config, '--to', lmdb.config, '--json');
    expect(run.code).toBe(1);
    const result: CopyJson = JSON.parse(run.stdout);
    expect(byId(result)['acct-a']!.notCopied).toMatch(
      /target is ahead \(highestSequenceNr 31 there, 30 in the source\)/,
    );
    expect(byId(result)['acct-b']!.notCopied).toMatch(/the target's event 1 differs from the source's/);
    expect(byId(result)['acct-b']!.eventsCopied).toBe(0);
    const after = await openData(lmdb);
    expect(await after.journal.highestSequenceNr('acct-b')).toBe(1);
    await after.close();
  });

  test('does not resume onto a target whose last event is corrupt; the other ids are copied', async () => {
    const file = await layout(root.dir, 'file');
    await makeData(file);
    const lmdb = await layout(root.dir, 'lmdb');
    const target = await openData(lmdb);
    await target.journal.appendBatch(
      'acct-a',
      Array.from({ length: 12 }, (_, i) => eventOf('acct-a', i + 1)),
    );
    await target.close();
    const data = path.join(lmdb.journal, 'data.mdb');
    await damageMarker(data, 'MARK-acct-a-12-END');
    const run = await cli('copy', '--from', file.config, '--to', lmdb.config, '--json');
    expect(run.code).toBe(1);
    const result: CopyJson = JSON.parse(run.stdout);
    expect(byId(result)['acct-a']!.notCopied).toMatch(/the target's event 12 cannot be compared/);
    expect(byId(result)['acct-a']!.eventsCopied).toBe(0);
    expect(result.problems).toContainEqual(
      expect.objectContaining({ kind: 'journal-corrupted', persistenceId: 'acct-a', sequenceNr: 12 }),
    );
    expect(byId(result)['acct-b']).toMatchObject({ eventsCopied: 12, snapshotsCopied: 1 });
  });

  test('resumes a dump whose last line an interruption tore', async () => {
    const file = await layout(root.dir, 'file');
    await makeData(file);
    const dump = path.join(root.dir, 'all.jsonl');
    expect((await cli('copy', '--from', file.config, '--to-dump', dump)).code).toBe(0);
    const full = await readFile(dump, 'utf8');
    // Cut in the middle of the line holding acct-b's event 5: a kill mid-write.
    const cut = full.indexOf('"sequenceNr":5,', full.indexOf('"persistenceId":"acct-b"')) + 7;
    await truncate(dump, Buffer.byteLength(full.slice(0, cut)));

    const run = await cli('copy', '--from', file.config, '--to-dump', dump, '--json');
    expect(run.stderr).toMatch(/note: cut \d+ byte\(s\) of a line torn by an interrupted copy/);
    expect(run.code).toBe(0);
    const result: CopyJson = JSON.parse(run.stdout);
    // acct-b from 5 on, acct-c and every snapshot of b and c (a's were before the cut).
    expect(byId(result)['acct-a']).toMatchObject({
      eventsCopied: 0,
      snapshotsCopied: 0,
      snapshotsAlreadyThere: 2,
    });
    expect(byId(result)['acct-b']).toMatchObject({
      eventsCopied: 8,
      eventsAlreadyThere: 4,
      snapshotsCopied: 1,
    });
    expect(byId(result)['acct-c']).toMatchObject({ eventsCopied: 15, snapshotsCopied: 1 });
    expect(result.verified).toEqual({ events: 57, snapshots: 4 });
    // Byte for byte what an uninterrupted run wrote, since ids are copied in order.
    expect(await readFile(dump, 'utf8')).toBe(full);
  });

  test('a damaged dump is not read: the line, offset, id and sequenceNr are named, nothing is written', async () => {
    const file = await layout(root.dir, 'file');
    await makeData(file);
    const dump = path.join(root.dir, 'all.jsonl');
    await cli('copy', '--from', file.config, '--to-dump', dump);
    const text = await readFile(dump, 'utf8');
    const line = text.split('\n').findIndex((l) => l.includes('"persistenceId":"acct-b","sequenceNr":3,'));
    const lineStart = text.split('\n').slice(0, line).join('\n').length + 1;
    // A byte inside the base64 message of acct-b's event 3.
    await flipByte(dump, { offset: text.indexOf('"message":"', lineStart) + 14 });
    const target = await layout(root.dir, 'lmdb');
    const run = await cli('copy', '--from-dump', dump, '--to', target.config);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      new RegExp(
        `line ${line + 1}: (event CRC mismatch|not JSON).* in ${dump.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} at offset ${lineStart}`,
      ),
    );
    expect(
      await stat(target.journal).then(
        () => true,
        () => false,
      ),
    ).toBe(false);
  });

  test('a dump that was not finished, or lost a whole line, is refused as a source', async () => {
    const file = await layout(root.dir, 'file');
    await makeData(file);
    const dump = path.join(root.dir, 'all.jsonl');
    await cli('copy', '--from', file.config, '--to-dump', dump);
    const lines = (await readFile(dump, 'utf8')).split('\n');
    expect(JSON.parse(lines.at(-2)!)).toEqual({ type: 'end', events: 57, snapshots: 4, notCopied: [] });
    const target = await layout(root.dir, 'lmdb');
    const refuse = async (text: string, reason: RegExp) => {
      const broken = path.join(root.dir, 'broken.jsonl');
      await writeFile(broken, text);
      const run = await cli('copy', '--from-dump', broken, '--to', target.config);
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(reason);
    };
    // Killed between two ids: every line whole, but no end line.
    await refuse(
      `${lines.slice(0, 20).join('\n')}\n`,
      /no end line: the copy that wrote this dump did not finish/,
    );
    // An event line gone: acct-a's events are no longer consecutive.
    const event5 = lines.findIndex((l) => l.includes('"persistenceId":"acct-a","sequenceNr":5,'));
    await refuse(
      lines.filter((_, i) => i !== event5).join('\n'),
      /line \d+: event 6 after event 4: sequenceNr 5\.\.5 missing/,
    );
    // A snapshot line gone: only the end line's totals show it.
    const snapshot = lines.findIndex((l) => l.startsWith('{"type":"snapshot"'));
    await refuse(
      lines.filter((_, i) => i !== snapshot).join('\n'),
      /the end line counts 57 event\(s\) and 4 snapshot\(s\), the dump holds 57 and 3: lines are missing/,
    );
    expect(
      await stat(target.journal).then(
        () => true,
        () => false,
      ),
    ).toBe(false);
  });

  test('a dump records the ids its copy left out, and a restore from it says so', async () => {
    const file = await layout(root.dir, 'file');
    await makeData(file);
    const segment = path.join(file.journal, '0000000000000001.log');
    await damageMarker(segment, 'MARK-acct-b-7-END');
    const dump = path.join(root.dir, 'all.jsonl');
    const written = await cli('copy', '--from', file.config, '--to-dump', dump, '--json');
    expect(written.code).toBe(1);
    expect(byId(JSON.parse(written.stdout))['acct-b']!.notCopied).toMatch(
      /copying stopped after sequenceNr 6/,
    );
    const target = await layout(root.dir, 'lmdb');
    const restored = await cli('copy', '--from-dump', dump, '--to', target.config);
    expect(restored.stderr).toContain(`note: the copy that wrote ${dump} left out "acct-b"`);
  });

  test('a corrupt source snapshot is a problem: the older one is copied, the copy exits 1', async () => {
    const lmdb = await layout(root.dir, 'lmdb');
    await makeData(lmdb);
    const data = path.join(lmdb.snapshots, 'data.mdb');
    await damageMarker(data, 'SNAP-acct-a-20-END');
    const dump = path.join(root.dir, 'out.jsonl');
    const run = await cli('copy', '--from', lmdb.config, '--to-dump', dump, '--json');
    expect(run.code).toBe(1);
    const result: CopyJson = JSON.parse(run.stdout);
    expect(result.problems).toEqual([
      expect.objectContaining({
        kind: 'snapshot-corrupted',
        persistenceId: 'acct-a',
        sequenceNr: 20,
        key: expect.stringContaining('acct-a'),
      }),
    ]);
    expect(byId(result)['acct-a']).toMatchObject({ eventsCopied: 30, snapshotsCopied: 1 });
    const reader = await DumpReader.open(dump);
    expect((await reader.loadLatest('acct-a'))?.sequenceNr).toBe(10);
    await reader.close();
  });

  test('bad dump and config paths are usage errors', async () => {
    const file = await layout(root.dir, 'file');
    await makeData(file);
    const missing = path.join(root.dir, 'missing.jsonl');
    const absent = await cli('copy', '--from-dump', missing, '--to-dump', path.join(root.dir, 'x.jsonl'));
    expect(absent.code).toBe(2);
    expect(absent.stderr).toContain('no such file');
    expect(
      await stat(path.join(root.dir, 'x.jsonl')).then(
        () => true,
        () => false,
      ),
    ).toBe(false);
    const same = await cli('copy', '--from-dump', missing, '--to-dump', missing);
    expect(same.code).toBe(2);
    const both = await cli('copy', '--from', file.config, '--from-dump', missing, '--to-dump', missing);
    expect(both.code).toBe(2);
    const noDir = await cli('copy', '--from', file.config, '--to-dump', path.join(root.dir, 'no', 'x.jsonl'));
    expect(noDir.code).toBe(2);
    expect(noDir.stderr).toMatch(/no such directory/);
    // A file that is not a dump is never written into, even one without a newline that could pass for torn.
    const precious = path.join(root.dir, 'precious.bin');
    await writeFile(precious, 'important bytes, no newline');
    const refused = await cli('copy', '--from', file.config, '--to-dump', precious);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/not a Cairn dump \(no header line\); refusing to write into it/);
    expect(await readFile(precious, 'utf8')).toBe('important bytes, no newline');
    // A header torn by a run killed as it began is started afresh.
    const torn = path.join(root.dir, 'torn-header.jsonl');
    await writeFile(torn, '{"format":"cairn-du');
    const restarted = await cli('copy', '--from', file.config, '--to-dump', torn);
    expect(restarted.code).toBe(0);
    expect(restarted.stderr).toMatch(/note: cut 19 byte\(s\)/);
    expect((await readFile(torn, 'utf8')).startsWith('{"format":"cairn-dump"')).toBe(true);
    await writeFile(path.join(root.dir, 'not-a-dump.jsonl'), '{"hello":1}\n');
    const notDump = await cli(
      'copy',
      '--from-dump',
      path.join(root.dir, 'not-a-dump.jsonl'),
      '--to',
      file.config,
    );
    expect(notDump.stderr).toMatch(/not a Cairn dump/);
  });
});
