import * as path from 'node:path';
import {
  canQuery,
  checkTags,
  createPersistence,
  MemoryMessageJournal,
  type MessageJournal,
  NO_TAGS,
  newJournalId,
  OffsetCodec,
} from '@cairn/actor-core';

describe('offsets', () => {
  const codec = new OffsetCodec(newJournalId());

  it('round-trip positions, large ones included', () => {
    for (const position of [1, 2, 1000, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER]) {
      expect(codec.decode(codec.encode(position))).toBe(position);
    }
  });

  it('refuse one digit changed, another journal, and shapes that are not offsets', () => {
    const offset = codec.encode(123456);
    const other = new OffsetCodec(newJournalId()).encode(123456);
    expect(() => codec.decode(offset.replace('.123456.', '.123457.'))).toThrow(TypeError);
    expect(() => codec.decode(other)).toThrow(/belongs to another journal/);
    for (const bad of ['', '0', 'x.1.y', `${offset}.`, ` ${offset}`, 7, null]) {
      expect(() => codec.decode(bad)).toThrow(TypeError);
    }
  });
});

describe('checkTags', () => {
  it('returns the same array when it is fine, drops duplicates, and shares one empty array', () => {
    const tags = ['a', 'b'];
    expect(checkTags(tags, 'x')).toBe(tags);
    expect(checkTags(['a', 'b', 'a'], 'x')).toEqual(['a', 'b']);
    expect(checkTags([], 'x')).toBe(NO_TAGS);
  });
});

describe('canQuery', () => {
  it('reads the declaration, not the methods', async () => {
    const journal = await MemoryMessageJournal.open();
    expect(canQuery(journal)).toBe(true);
    const undeclared = { capabilities: { persistent: true }, allEvents() {} } as unknown as MessageJournal;
    expect(canQuery(undeclared)).toBe(false);
    await journal.close();
  });
});

describe('createPersistence(...).offsets', () => {
  it('is the memory provider’s OffsetStore: load/save, validated, closed with the journal', async () => {
    const persistence = await createPersistence({
      journal: { provider: 'memory' },
      snapshots: { provider: 'memory' },
    });
    const offsets = persistence.offsets!;
    expect(await offsets.load('balances')).toBeUndefined();
    await offsets.save('balances', 'o1');
    await offsets.save('balances', 'o2');
    await offsets.save('reports', 'r1');
    expect(await offsets.load('balances')).toBe('o2');
    expect(await offsets.load('reports')).toBe('r1');
    await expect(offsets.save('', 'o')).rejects.toThrow(TypeError);
    await expect(offsets.save('x', '')).rejects.toThrow(TypeError);
    await expect(offsets.save('x', 5 as unknown as string)).rejects.toThrow(TypeError);
    await expect(offsets.load(3 as unknown as string)).rejects.toThrow(TypeError);
    expect(await offsets.load('x')).toBeUndefined();
    await persistence.close();
    await expect(offsets.load('balances')).rejects.toThrow(/closed/);
    await expect(offsets.save('balances', 'o3')).rejects.toThrow(/closed/);
  });

  it('is undefined when the journal’s provider offers none', async () => {
    const persistence = await createPersistence({
      journal: { provider: path.join(__dirname, 'fixtures', 'custom-provider.js') },
      snapshots: { provider: 'memory' },
    });
    expect(persistence.offsets).toBeUndefined();
    await persistence.close();
  });
});

describe('memory journal queries', () => {
  it('a live reader that paused while writers went on delivers everything after, in order', async () => {
    const journal = await MemoryMessageJournal.open();
    await journal.appendBatch(
      'a',
      Array.from({ length: 300 }, (_, i) => i),
    );
    const reader = journal.allEvents({ live: true })[Symbol.asyncIterator]();
    expect((await reader.next()).value?.sequenceNr).toBe(1);
    // The journal keeps nothing per reader: its events are the store's, and the reader's page is one
    // slice of at most 256 of them. Appends meanwhile do not reach the reader until it pulls.
    for (let i = 0; i < 20; i++)
      await journal.appendBatch(
        'a',
        Array.from({ length: 100 }, (_, j) => j),
      );
    let count = 1;
    for (;;) {
      const next = await reader.next();
      count++;
      if (next.value?.sequenceNr === 2300) break;
    }
    expect(count).toBe(2300);
    await reader.return?.();
    await journal.close();
  });
});
