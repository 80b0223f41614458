import { LmdbMessageJournal } from '@cairn/journal-lmdb';
import { offsetKey } from '../src/record-codec';
import { spawnChild } from './child-process';
import { rawEntries } from './legacy-records';
import { useTempDirs } from './temp-dir';

const tempDir = useTempDirs();

describe('LmdbOffsetStore', () => {
  it('saves, replaces and loads offsets by projection name, across reopen', async () => {
    const path = tempDir();
    const journal = await LmdbMessageJournal.open({ path });
    const offsets = journal.offsetStore();
    expect(journal.offsetStore()).toBe(offsets);
    expect(await offsets.load('balances')).toBeUndefined();
    await offsets.save('balances', 'o-1');
    await offsets.save('balances', 'o-2');
    await offsets.save('per-day', 'x');
    expect(await offsets.load('balances')).toBe('o-2');
    await journal.close();
    await expect(offsets.load('balances')).rejects.toMatchObject({ code: 'ERR_JOURNAL_CLOSED' });
    await expect(offsets.save('balances', 'o-3')).rejects.toMatchObject({ code: 'ERR_JOURNAL_CLOSED' });

    const reopened = await LmdbMessageJournal.open({ path });
    expect(await reopened.offsetStore().load('balances')).toBe('o-2');
    expect(await reopened.offsetStore().load('per-day')).toBe('x');
    await reopened.close();
  });

  it('bad names and offsets are TypeError/RangeError and save nothing', async () => {
    const path = tempDir();
    const journal = await LmdbMessageJournal.open({ path });
    const offsets = journal.offsetStore();
    await expect(offsets.save('', 'o')).rejects.toThrow(TypeError);
    await expect(offsets.save('x'.repeat(201), 'o')).rejects.toThrow(RangeError);
    await expect(offsets.save(7 as unknown as string, 'o')).rejects.toThrow(TypeError);
    await expect(offsets.save('p', '')).rejects.toThrow(TypeError);
    await expect(offsets.save('p', 5 as unknown as string)).rejects.toThrow(TypeError);
    await expect(offsets.load('')).rejects.toThrow(TypeError);
    expect(() => offsets.transactSync('p', '', () => undefined)).toThrow(TypeError);
    await journal.close();
    expect(await rawEntries(path, 'offsets')).toEqual([]);
  });

  it('a damaged offset record is named, not returned', async () => {
    const path = tempDir();
    const journal = await LmdbMessageJournal.open({ path });
    await journal.offsetStore().save('p', 'offset-1');
    await journal.close();
    const { open } = await import('lmdb');
    const root = open({ path, maxDbs: 64 });
    const db = root.openDB<Buffer, Buffer>({ name: 'offsets', encoding: 'binary', keyEncoding: 'binary' });
    const value = Buffer.from(db.get(offsetKey('p'))!);
    value[value.length - 1]! ^= 0x01;
    await db.put(offsetKey('p'), value);
    await root.close();
    const reopened = await LmdbMessageJournal.open({ path });
    await expect(reopened.offsetStore().load('p')).rejects.toMatchObject({
      code: 'ERR_JOURNAL_CORRUPTED',
      key: 'offsets:p',
    });
    await reopened.close();
  });

  it('read-only: load works, save and transactSync are refused with ReadOnlyError', async () => {
    const path = tempDir();
    const writable = await LmdbMessageJournal.open({ path });
    await writable.offsetStore().save('p', 'o-1');
    await writable.close();
    const journal = await LmdbMessageJournal.open({ path, readOnly: true });
    expect(await journal.offsetStore().load('p')).toBe('o-1');
    await expect(journal.offsetStore().save('p', 'o-2')).rejects.toMatchObject({ code: 'ERR_READ_ONLY' });
    expect(() => journal.offsetStore().transactSync('p', 'o-2', () => undefined)).toThrow(
      expect.objectContaining({ code: 'ERR_READ_ONLY' }),
    );
    expect(await journal.offsetStore().load('p')).toBe('o-1');
    await journal.close();
  });
});

describe('transactSync (exactly-once)', () => {
  it('commits the read model and the offset together, and returns the body result', async () => {
    const path = tempDir();
    const journal = await LmdbMessageJournal.open({ path });
    const offsets = journal.offsetStore();
    const balances = offsets.readModel<string, number>('balances');
    const result = offsets.transactSync('balances', 'o-1', () => {
      balances.putSync('acct-1', 10);
      // Reads inside see the transaction's own writes.
      return balances.get('acct-1');
    });
    expect(result).toBe(10);
    expect(balances.get('acct-1')).toBe(10);
    expect(await offsets.load('balances')).toBe('o-1');
    await journal.close();

    const reopened = await LmdbMessageJournal.open({ path });
    expect(reopened.offsetStore().readModel<string, number>('balances').get('acct-1')).toBe(10);
    expect(await reopened.offsetStore().load('balances')).toBe('o-1');
    await reopened.close();
  });

  it('a body that throws leaves neither its writes nor the offset', async () => {
    const path = tempDir();
    const journal = await LmdbMessageJournal.open({ path });
    const offsets = journal.offsetStore();
    const model = offsets.readModel<string, number>('m');
    offsets.transactSync('p', 'o-1', () => model.putSync('k', 1));
    expect(() =>
      offsets.transactSync('p', 'o-2', () => {
        model.putSync('k', 2);
        throw new Error('handler failed');
      }),
    ).toThrow('handler failed');
    expect(model.get('k')).toBe(1);
    expect(await offsets.load('p')).toBe('o-1');
    await journal.close();
  });

  it('a body returning a promise is refused with a TypeError and writes nothing', async () => {
    const path = tempDir();
    const journal = await LmdbMessageJournal.open({ path });
    const offsets = journal.offsetStore();
    const model = offsets.readModel<string, number>('m');
    expect(() =>
      offsets.transactSync('p', 'o-1', async () => {
        model.putSync('k', 1);
      }),
    ).toThrow(/must be synchronous/);
    expect(model.get('k')).toBeUndefined();
    expect(await offsets.load('p')).toBeUndefined();
    await journal.close();
  });

  it('runs between the journal group commits of the same process without blocking them', async () => {
    const path = tempDir();
    const journal = await LmdbMessageJournal.open<number>({ path, maxBatchDelayMs: 0 });
    const offsets = journal.offsetStore();
    const model = offsets.readModel<string, number>('count');
    const appends: Promise<number>[] = [];
    for (let i = 0; i < 300; i++) {
      appends.push(journal.append(`id-${i % 7}`, i));
      if (i % 3 === 0) {
        offsets.transactSync('p', `o-${i}`, () => model.putSync('n', (model.get('n') ?? 0) + 1));
      }
      if (i % 50 === 0) await Promise.all(appends.slice(-10));
    }
    await Promise.all(appends);
    expect(model.get('n')).toBe(100);
    expect(await offsets.load('p')).toBe('o-297');
    let total = 0;
    for (let id = 0; id < 7; id++) total += await journal.highestSequenceNr(`id-${id}`);
    expect(total).toBe(300);
    await journal.close();
  });

  it('read-model names live apart from the journal databases and are bounded', async () => {
    const path = tempDir();
    const journal = await LmdbMessageJournal.open<number>({ path });
    const offsets = journal.offsetStore();
    const fake = offsets.readModel<string, string>('journal');
    offsets.transactSync('p', 'o', () => fake.putSync('x', 'y'));
    await journal.append('a', 1);
    const read: number[] = [];
    for await (const e of journal.readFrom('a', 1)) read.push(e.message);
    expect(read).toEqual([1]);
    expect(() => offsets.readModel('')).toThrow(TypeError);
    await journal.close();
    expect(() => offsets.readModel('m')).toThrow(expect.objectContaining({ code: 'ERR_JOURNAL_CLOSED' }));
  });
});

describe('projection records and locks', () => {
  it('keeps statuses beside offsets, lists names, deletes an offset and keeps its status', async () => {
    const path = tempDir();
    const journal = await LmdbMessageJournal.open({ path });
    const offsets = journal.offsetStore();
    expect(offsets.capabilities.projectionRecords).toBe(true);
    await offsets.save('b', 'o-1');
    await offsets.saveStatus('a', '{"state":"stopped"}');
    await offsets.save('a', 'o-2');
    expect(await offsets.names()).toEqual(['a', 'b']);
    await offsets.deleteOffset('a');
    expect(await offsets.load('a')).toBeUndefined();
    expect(await offsets.loadStatus('a')).toBe('{"state":"stopped"}');
    expect(await offsets.names()).toEqual(['a', 'b']);
    await expect(offsets.saveStatus('a', 7 as unknown as string)).rejects.toThrow(TypeError);
    await journal.close();
    const reopened = await LmdbMessageJournal.open({ path, readOnly: true });
    expect(await reopened.offsetStore().loadStatus('a')).toBe('{"state":"stopped"}');
    expect(await reopened.offsetStore().names()).toEqual(['a', 'b']);
    await expect(reopened.offsetStore().lockProjection('a')).rejects.toMatchObject({ code: 'ERR_READ_ONLY' });
    await reopened.close();
  });

  it('one holder per name in a process; release and close give it up', async () => {
    const path = tempDir();
    const journal = await LmdbMessageJournal.open({ path });
    const offsets = journal.offsetStore();
    const lock = await offsets.lockProjection('p');
    expect(await offsets.projectionLocked('p')).toBe(true);
    await expect(offsets.lockProjection('p')).rejects.toMatchObject({
      code: 'ERR_JOURNAL_LOCKED',
      holder: { pid: process.pid },
    });
    const other = await offsets.lockProjection('q');
    await lock.release();
    await lock.release();
    expect(await offsets.projectionLocked('p')).toBe(false);
    await (await offsets.lockProjection('p')).release();
    await journal.close();
    await other.release();
    const reopened = await LmdbMessageJournal.open({ path });
    // Closing the journal released 'q'.
    expect(await reopened.offsetStore().projectionLocked('q')).toBe(false);
    await (await reopened.offsetStore().lockProjection('q')).release();
    await reopened.close();
  });

  it('across processes: refused while the holder runs, taken over at once after it was killed', async () => {
    const path = tempDir();
    await (await LmdbMessageJournal.open({ path })).close();
    const child = spawnChild(['lock', path, 'p']);
    await child.waitForLine('locked');
    const journal = await LmdbMessageJournal.open({ path });
    const offsets = journal.offsetStore();
    expect(await offsets.projectionLocked('p')).toBe(true);
    await expect(offsets.lockProjection('p')).rejects.toMatchObject({
      code: 'ERR_JOURNAL_LOCKED',
      holder: { pid: child.process.pid },
    });
    child.process.kill('SIGKILL');
    await child.exited;
    expect(await offsets.projectionLocked('p')).toBe(false);
    const lock = await offsets.lockProjection('p');
    expect(await offsets.projectionLocked('p')).toBe(true);
    await lock.release();
    await journal.close();
  });
});
