import { LmdbMessageJournal } from '@cairn/journal-lmdb';
import { spawnChild } from './child-process';
import { useTempDirs } from './temp-dir';

const tempDir = useTempDirs();

describe('a second process writing the same id', () => {
  it('reads the highest from storage; a stale expectation is refused, an append without one is numbered after the other process', async () => {
    const path = tempDir();
    const journal = await LmdbMessageJournal.open<{ tag: string; i: number }>({ path });
    expect(journal.capabilities.sharedWriters).toBe(true);
    expect(await journal.append('shared', { tag: 'parent', i: 0 })).toBe(1);

    let child = spawnChild(['contend', path, 'shared', '1', 'child']);
    expect(await child.exited).toBe(0);
    expect(child.acks).toEqual([['shared', 2]]);
    // Not what this process remembers (1): what the environment holds.
    expect(await journal.highestSequenceNr('shared')).toBe(2);
    // Judged inside the write transaction: nothing is written.
    await expect(
      journal.append('shared', { tag: 'parent', i: 1 }, { expectedSequenceNr: 1 }),
    ).rejects.toMatchObject({
      code: 'ERR_SEQUENCE_CONFLICT',
      persistenceId: 'shared',
      expectedSequenceNr: 1,
      actualSequenceNr: 2,
    });
    child = spawnChild(['contend', path, 'shared', '1', 'child']);
    expect(await child.exited).toBe(0);
    expect(child.acks).toEqual([['shared', 3]]);
    // This process last saw 2; the transaction finds 3, and the append is numbered again: 4, no conflict.
    expect(await journal.append('shared', { tag: 'parent', i: 2 })).toBe(4);
    // Two ids at once, one of them written meanwhile by the other process: both land (whether they share
    // a commit or not), the stale one numbered after the other process's event.
    child = spawnChild(['contend', path, 'shared', '1', 'child']);
    expect(await child.exited).toBe(0);
    const [other, again] = await Promise.all([
      journal.append('other', { tag: 'parent', i: 3 }),
      journal.append('shared', { tag: 'parent', i: 4 }),
    ]);
    expect([other, again]).toEqual([1, 6]);
    const log: string[] = [];
    for await (const e of journal.readFrom('shared', 1))
      log.push(`${e.sequenceNr}:${e.message.tag}:${e.message.i}`);
    expect(log).toEqual(['1:parent:0', '2:child:0', '3:child:0', '4:parent:2', '5:child:0', '6:parent:4']);
    // A stale expectation beside another id's append, issued together (one group commit): only the stale
    // one is refused; the other id's event is stored.
    child = spawnChild(['contend', path, 'shared', '1', 'child']);
    expect(await child.exited).toBe(0);
    const [stale, bystander] = await Promise.allSettled([
      journal.append('shared', { tag: 'parent', i: 5 }, { expectedSequenceNr: 6 }),
      journal.append('bystander', { tag: 'parent', i: 6 }),
    ]);
    expect(stale).toMatchObject({
      status: 'rejected',
      reason: { code: 'ERR_SEQUENCE_CONFLICT', expectedSequenceNr: 6, actualSequenceNr: 7 },
    });
    expect(bystander).toEqual({ status: 'fulfilled', value: 1 });
    expect(await journal.highestSequenceNr('shared')).toBe(7);
    expect(await journal.highestSequenceNr('bystander')).toBe(1);
    await journal.close();
  });

  it('two processes appending at once: every acknowledged append is stored once, in a gapless log', async () => {
    const path = tempDir();
    const first = spawnChild(['contend', path, 'hot', '150', 'a']);
    const second = spawnChild(['contend', path, 'hot', '150', 'b']);
    expect(await first.exited).toBe(0);
    expect(await second.exited).toBe(0);

    // Appends without expectedSequenceNr never conflict on a journal with sharedWriters: every one of them
    // was numbered (again, when the other process took its number first) and acknowledged.
    const conflicts = [first, second].map((c) => Number(/^done (\d+)$/.exec(c.lines.at(-1) ?? '')?.[1]));
    expect(conflicts).toEqual([0, 0]);
    expect(first.acks.length).toBe(150);
    expect(second.acks.length).toBe(150);
    const owner = new Map<number, string>();
    for (const [tag, child] of [
      ['a', first],
      ['b', second],
    ] as const) {
      for (const [, seq] of child.acks) {
        expect(owner.has(seq)).toBe(false);
        owner.set(seq, tag);
      }
    }
    const journal = await LmdbMessageJournal.open<{ tag: string; i: number }>({ path });
    let expected = 1;
    for await (const e of journal.readFrom('hot', 1)) {
      expect(e.sequenceNr).toBe(expected++);
      expect(e.message.tag).toBe(owner.get(e.sequenceNr));
    }
    expect(expected - 1).toBe(owner.size);
    expect(await journal.highestSequenceNr('hot')).toBe(owner.size);
    await journal.close();
  });
});

describe('the global order across processes', () => {
  it('two writer processes, a live reader in a third: every event once, in one order keeping each writer order', async () => {
    const path = tempDir();
    // The environment exists before the read-only reader opens it.
    await (await LmdbMessageJournal.open({ path })).close();
    const perWriter = 200;
    const reader = spawnChild(['follow', path, String(2 * perWriter)]);
    const writers = [
      spawnChild(['writer', path, 'w1', String(perWriter)]),
      spawnChild(['writer', path, 'w2', String(perWriter)]),
    ];
    for (const w of writers) expect(await w.exited).toBe(0);
    expect(await reader.exited).toBe(0);

    const seen = reader.lines
      .filter((l) => l.startsWith('ev '))
      .map((l) => {
        const [, id, seq, writer, i, offset] = l.split(' ');
        return { id: id!, seq: Number(seq), writer: writer!, i: Number(i), offset: offset! };
      });
    expect(seen).toHaveLength(2 * perWriter);
    // Every event once.
    expect(new Set(seen.map((e) => `${e.id}#${e.seq}`)).size).toBe(2 * perWriter);
    expect(new Set(seen.map((e) => e.offset)).size).toBe(2 * perWriter);
    // Each writer appended one event at a time, awaiting each: its events come in its order.
    for (const name of ['w1', 'w2']) {
      expect(seen.filter((e) => e.writer === name).map((e) => e.i)).toEqual(
        Array.from({ length: perWriter }, (_, i) => i),
      );
    }
    // Both writers were interleaved by the commits (not one after the other), so the order was shared.
    const switches = seen.filter((e, k) => k > 0 && e.writer !== seen[k - 1]!.writer).length;
    expect(switches).toBeGreaterThan(1);
    // One order: a fresh reader after the fact sees exactly the live reader's sequence and offsets.
    const journal = await LmdbMessageJournal.open<{ writer: string; i: number }>({ path });
    const again: string[] = [];
    for await (const e of journal.allEvents()) again.push(`${e.persistenceId}#${e.sequenceNr}@${e.offset}`);
    expect(again).toEqual(seen.map((e) => `${e.id}#${e.seq}@${e.offset}`));
    const tagged: string[] = [];
    for await (const e of journal.eventsByTag('w1')) tagged.push(`${e.persistenceId}#${e.sequenceNr}`);
    expect(tagged).toEqual(seen.filter((e) => e.writer === 'w1').map((e) => `${e.id}#${e.seq}`));
    await journal.close();
  });
});
