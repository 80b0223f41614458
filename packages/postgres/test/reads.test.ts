import { JournalCorruptedError, type PersistenceReport } from '@cairn/actor-core';
import { PostgresMessageJournal, PostgresSnapshotStore } from '@cairn/postgres';
import { collect } from '@cairn/testkit';
import pg from 'pg';
import { fastTestServerUrl, sql, TestSchemas } from './pg-test-env';

const schemas = new TestSchemas('pgread');
afterAll(() => schemas.dropAll());

const open = <M = unknown>(schema: string) =>
  PostgresMessageJournal.open<M>({ connectionString: fastTestServerUrl(), schema });

/** More than two of the journal's read pages (2000 events each). */
const MANY = 4500;

async function sequenceNrs(journal: PostgresMessageJournal<number>, id: string, from: number, options = {}) {
  return (await collect(journal.readFrom(id, from, options))).map((e) => e.sequenceNr);
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, k) => from + k);

describe('reading an id page by page (windows of sequence numbers bounded by the streams row)', () => {
  let schema: string;
  let journal: PostgresMessageJournal<number>;
  beforeAll(async () => {
    schema = schemas.next();
    journal = await open<number>(schema);
    await journal.appendBatch('long', range(1, MANY));
    await journal.appendBatch('short', [1, 2, 3]);
  });
  afterAll(() => journal.close());

  it('serves every event of a long id once, in order, with its message', async () => {
    const entries = await collect(journal.readFrom('long', 1));
    expect(entries.map((e) => e.sequenceNr)).toEqual(range(1, MANY));
    expect(entries.every((e) => e.message === e.sequenceNr)).toBe(true);
  });

  it('starts in the middle, stops at toSequenceNr and at max, across page boundaries', async () => {
    expect(await sequenceNrs(journal, 'long', 1999)).toEqual(range(1999, MANY));
    expect(await sequenceNrs(journal, 'long', 10, { toSequenceNr: 4001 })).toEqual(range(10, 4001));
    expect(await sequenceNrs(journal, 'long', 3, { max: 2500 })).toEqual(range(3, 2502));
    expect(await sequenceNrs(journal, 'long', MANY)).toEqual([MANY]);
    expect(await sequenceNrs(journal, 'long', MANY + 1)).toEqual([]);
    expect(await sequenceNrs(journal, 'short', 1, { toSequenceNr: 2 })).toEqual([1, 2]);
    expect(await sequenceNrs(journal, 'never-written', 1)).toEqual([]);
  });

  it('a read abandoned after its first page leaves nothing in flight: the journal closes cleanly', async () => {
    const own = await open<number>(schema);
    let seen = 0;
    for await (const entry of own.readFrom('long', 1)) {
      seen = entry.sequenceNr;
      if (seen === 5) break; // the next page was asked for ahead: it must settle before close
    }
    expect(seen).toBe(5);
    await own.close();
    expect(own.metrics().eventsRead).toBe(5);
  });
});

describe('reads after truncation and damage', () => {
  it('starts at the lowest surviving event when truncation removed the start of the range', async () => {
    const schema = schemas.next();
    const journal = await open<number>(schema);
    try {
      await journal.appendBatch('t', range(1, MANY));
      await journal.truncateBefore('t', 2500);
      expect(await sequenceNrs(journal, 't', 1)).toEqual(range(2500, MANY));
      expect(await sequenceNrs(journal, 't', 1, { max: 3 })).toEqual([2500, 2501, 2502]);
    } finally {
      await journal.close();
    }
  });

  it('a row missing from the middle of a page is named as corruption, not skipped', async () => {
    const schema = schemas.next();
    const journal = await open<number>(schema);
    try {
      await journal.appendBatch('gap', range(1, MANY));
      await sql(`DELETE FROM "${schema}".journal WHERE persistence_id = 'gap' AND seq_nr = 2100`);
      const error = await collect(journal.readFrom('gap', 1)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(JournalCorruptedError);
      expect(error).toMatchObject({ persistenceId: 'gap', sequenceNr: 2100 });
    } finally {
      await journal.close();
    }
  });

  it('the rows at the end of a page boundary missing are named too', async () => {
    const schema = schemas.next();
    const journal = await open<number>(schema);
    try {
      await journal.appendBatch('edge', range(1, MANY));
      // The whole second page (2001..4000) gone: the third page starts after a gap.
      await sql(
        `DELETE FROM "${schema}".journal WHERE persistence_id = 'edge' AND seq_nr BETWEEN 2001 AND 4000`,
      );
      await expect(collect(journal.readFrom('edge', 1))).rejects.toMatchObject({
        code: 'ERR_JOURNAL_CORRUPTED',
        sequenceNr: 2001,
      });
    } finally {
      await journal.close();
    }
  });

  it("an id whose streams row was deleted behind Cairn's back still serves the rows it has", async () => {
    const schema = schemas.next();
    const journal = await open<number>(schema);
    try {
      await journal.appendBatch('lost', range(1, MANY));
      await sql(`DELETE FROM "${schema}".streams WHERE persistence_id = 'lost'`);
      expect(await sequenceNrs(journal, 'lost', 2)).toEqual(range(2, MANY));
    } finally {
      await journal.close();
    }
  });
});

describe('many ids read at once (a recovery storm: their reads share statements)', () => {
  it('each id gets its own highest, events and newest snapshot, also beside ids never written', async () => {
    const schema = schemas.next();
    const journal = await open<number>(schema);
    const snapshots = await PostgresSnapshotStore.open<string>({
      connectionString: fastTestServerUrl(),
      schema,
    });
    try {
      const ids = Array.from({ length: 300 }, (_, n) => `r-${n}`);
      // Id n holds n % 7 + 1 events; ids divisible by 3 have snapshots at 1 and (when it exists) 2.
      for (const [n, id] of ids.entries()) {
        await journal.appendBatch(id, range(1, (n % 7) + 1));
        if (n % 3 === 0) {
          await snapshots.save(id, 1, `${id}@1`);
          if (n % 7 >= 1) await snapshots.save(id, 2, `${id}@2`);
        }
      }
      const all = [...ids, 'nobody-1', 'nobody-2'];
      const [highests, reads, latest, capped] = await Promise.all([
        Promise.all(all.map((id) => journal.highestSequenceNr(id))),
        Promise.all(all.map((id, n) => collect(journal.readFrom(id, n % 2 === 0 ? 1 : 2)))),
        Promise.all(all.map((id) => snapshots.loadLatest(id))),
        Promise.all(all.map((id) => snapshots.loadLatest(id, { maxSequenceNr: 1 }))),
      ]);
      all.forEach((id, n) => {
        const count = n < ids.length ? (n % 7) + 1 : 0;
        expect(highests[n]).toBe(count);
        const expected = count === 0 ? [] : range(n % 2 === 0 ? 1 : 2, count);
        expect(reads[n]!.map((e) => e.sequenceNr)).toEqual(expected);
        expect(reads[n]!.map((e) => e.message)).toEqual(expected);
        const has = n < ids.length && n % 3 === 0;
        const newest = has ? (n % 7 >= 1 ? 2 : 1) : undefined;
        expect(latest[n] && { sequenceNr: latest[n]!.sequenceNr, state: latest[n]!.state }).toEqual(
          newest === undefined ? undefined : { sequenceNr: newest, state: `${id}@${newest}` },
        );
        expect(capped[n]?.state).toEqual(has ? `${id}@1` : undefined);
      });
    } finally {
      await Promise.all([journal.close(), snapshots.close()]);
    }
  });

  it('the newest snapshot, read with the listing, is checked like any load: a damaged one is skipped', async () => {
    const schema = schemas.next();
    const reports: PersistenceReport[] = [];
    const snapshots = await PostgresSnapshotStore.open<string>({
      connectionString: fastTestServerUrl(),
      schema,
      reporter: (r) => reports.push(r),
    });
    try {
      for (const id of ['x', 'y']) {
        await snapshots.save(id, 1, `${id}@1`);
        await snapshots.save(id, 2, `${id}@2`);
      }
      await sql(
        `UPDATE "${schema}".snapshots SET payload = payload || '\\x00'::bytea WHERE persistence_id = 'x' AND seq_nr = 2`,
      );
      const [x, y] = await Promise.all([snapshots.loadLatest('x'), snapshots.loadLatest('y')]);
      expect(x?.state).toBe('x@1');
      expect(y?.state).toBe('y@2');
      expect(reports.map((r) => r.message)).toEqual([
        expect.stringContaining(`"${schema}".snapshots (x, 2)`),
      ]);
    } finally {
      await snapshots.close();
    }
  });
});

describe('commit announcements (NOTIFY) of a busy journal', () => {
  it('are coalesced to one per 20 ms at most, and the last commits are always announced', async () => {
    const schema = schemas.next();
    const journal = await open<number>(schema);
    const listener = new pg.Client({ connectionString: fastTestServerUrl() });
    await listener.connect();
    const heard: number[] = [];
    listener.on('notification', () => heard.push(performance.now()));
    try {
      await listener.query(`LISTEN "cairn_${schema}"`);
      const started = performance.now();
      for (let n = 1; n <= 40; n++) await journal.append('busy', n);
      const elapsed = performance.now() - started;
      const committedAt = performance.now();
      // The commits after the last NOTIFY are announced at the end of the interval.
      for (let waited = 0; !heard.some((t) => t >= committedAt - 1) && waited < 2000; waited += 10) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      expect(heard.length).toBeGreaterThanOrEqual(1);
      expect(heard.length).toBeLessThanOrEqual(Math.ceil(elapsed / 20) + 2);
      expect(heard.length).toBeLessThan(40);
      // A commit right before close is announced by close.
      const before = heard.length;
      await journal.append('busy', 41);
      await journal.close();
      for (let waited = 0; heard.length === before && waited < 2000; waited += 10) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      expect(heard.length).toBe(before + 1);
    } finally {
      await journal.close();
      await listener.end();
    }
  });
});
