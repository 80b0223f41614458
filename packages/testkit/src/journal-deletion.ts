import { canDelete, canQuery, type DeletableJournal, type MessageJournal } from '@cairn/actor-core';
import { collect, freshId, runnerOf } from './conformance-context';
import { type JournalCase, type JournalConformanceOptions, journalCase } from './journal-conformance';

/** The journal of a case as a DeletableJournal; fails the case when it does not declare `deletion`. */
function deletable(journal: MessageJournal<unknown>): DeletableJournal<unknown> {
  if (!canDelete(journal)) throw new Error('the journal does not declare capabilities.deletion');
  return journal;
}

type Case = (c: JournalCase & { d: DeletableJournal<unknown> }) => Promise<void>;

const seqs = (entries: readonly { sequenceNr: number }[]) => entries.map((e) => e.sequenceNr);

/**
 * deletePersistenceId: the id's events unreadable at once, a marker that keeps its numbers from being
 * reused and that queries deliver when asked (`deletions: true`), across reopen. Gated by
 * `capabilities.deletion` (the query cases also by `query`).
 */
export function journalDeletionGroup(options: JournalConformanceOptions): void {
  const { describe, expect } = runnerOf(options);
  const test = (title: string, body: Case) =>
    journalCase(options, title, (c) => {
      c.ctx.requires(c.journal.capabilities.deletion, 'deletion');
      return body({ ...c, d: deletable(c.journal) });
    });

  describe('deletion', () => {
    test('the events are unreadable at once; the numbers are never reused', async ({ d, id }) => {
      await d.appendBatch(id, ['a', 'b', 'c']);
      await d.deletePersistenceId(id);
      expect(await collect(d.readFrom(id, 1))).toEqual([]);
      expect(await d.highestSequenceNr(id)).toBe(4);
      const marker = await collect(d.readFrom(id, 1, { deletions: true }));
      expect(marker).toEqual([
        {
          deleted: true,
          persistenceId: id,
          sequenceNr: 4,
          timestamp: marker[0]?.timestamp,
          tags: [],
          message: undefined,
        },
      ]);
      expect(typeof marker[0]?.timestamp).toBe('number');
      // A new incarnation continues after the marker.
      expect(await d.append(id, 'again')).toBe(5);
      expect((await collect(d.readFrom(id, 1))).map((e) => [e.sequenceNr, e.message])).toEqual([
        [5, 'again'],
      ]);
      expect(seqs(await collect(d.readFrom(id, 1, { deletions: true })))).toEqual([4, 5]);
      expect([...(await collect(d.persistenceIds()))]).toContain(id);
    });

    test('an id never written is left alone; deleting twice leaves one marker', async ({ d, id }) => {
      const never = freshId('never');
      await d.deletePersistenceId(never);
      expect(await d.highestSequenceNr(never)).toBe(0);
      await d.append(id, 'a');
      await d.deletePersistenceId(id);
      await d.deletePersistenceId(id);
      expect(await d.highestSequenceNr(id)).toBe(2);
      expect(seqs(await collect(d.readFrom(id, 1, { deletions: true })))).toEqual([2]);
      // After new events, a second deletion replaces the first marker.
      await d.appendBatch(id, ['b', 'c']);
      await d.deletePersistenceId(id);
      expect(seqs(await collect(d.readFrom(id, 1, { deletions: true })))).toEqual([5]);
      expect(await collect(d.readFrom(id, 1))).toEqual([]);
    });

    test('a passed-over marker does not take the place of an event (max, toSequenceNr)', async ({
      d,
      id,
    }) => {
      await d.appendBatch(id, ['a', 'b']);
      await d.deletePersistenceId(id);
      await d.appendBatch(id, ['c', 'd', 'e']);
      expect(seqs(await collect(d.readFrom(id, 1, { max: 2 })))).toEqual([4, 5]);
      expect(seqs(await collect(d.readFrom(id, 3, { toSequenceNr: 4 })))).toEqual([4]);
      expect(seqs(await collect(d.readFrom(id, 1, { max: 2, deletions: true })))).toEqual([3, 4]);
    });

    test('the deletion survives a reopen', async ({ ctx, d, id }) => {
      ctx.requires(d.capabilities.persistent, 'persistent');
      await d.appendBatch(id, ['a', 'b']);
      await d.deletePersistenceId(id);
      const reopened = deletable(await ctx.reopen());
      expect(await collect(reopened.readFrom(id, 1))).toEqual([]);
      expect(await reopened.highestSequenceNr(id)).toBe(3);
      expect(await reopened.append(id, 'c')).toBe(4);
    });

    test('bad arguments: TypeError, nothing deleted', async ({ d, id }) => {
      await d.append(id, 'a');
      await expect(d.deletePersistenceId('')).rejects.toThrow(TypeError);
      await expect(collect(d.readFrom(id, 1, { deletions: 'yes' as never }))).rejects.toThrow(TypeError);
      expect(await collect(d.readFrom(id, 1))).toHaveLength(1);
    });

    test('queries skip the marker unless asked; asked, it comes in the global order with every tag', async ({
      ctx,
      d,
      id,
    }) => {
      ctx.requires(d.capabilities.query, 'query');
      if (!canQuery(d)) throw new Error('the journal does not declare capabilities.query');
      const other = freshId('other');
      await d.append(id, 'a', { tags: ['red'] });
      await d.append(other, 'x', { tags: ['red'] });
      await d.append(id, 'b', { tags: ['blue', 'red'] });
      await d.deletePersistenceId(id);
      await d.append(other, 'y');
      expect((await collect(d.allEvents())).map((e) => e.message)).toEqual(['x', 'y']);
      const all = await collect(d.allEvents({ deletions: true }));
      expect(all.map((e) => (e.deleted ? `deleted ${e.persistenceId}` : e.message))).toEqual([
        'x',
        `deleted ${id}`,
        'y',
      ]);
      const marker = all[1]!;
      expect(marker.deleted).toBe(true);
      expect([...marker.tags].sort()).toEqual(['blue', 'red']);
      expect(marker.sequenceNr).toBe(3);
      for (const tag of ['red', 'blue']) {
        const tagged = await collect(d.eventsByTag(tag, { deletions: true }));
        expect(tagged.filter((e) => e.deleted).map((e) => e.persistenceId)).toEqual([id]);
        expect((await collect(d.eventsByTag(tag))).some((e) => e.persistenceId === id)).toBe(false);
      }
      const byId = await collect(d.eventsByPersistenceId(id, { deletions: true }));
      expect(byId.map((e) => [e.sequenceNr, e.deleted === true])).toEqual([[3, true]]);
      expect(await collect(d.eventsByPersistenceId(id))).toEqual([]);
      // The marker's offset resumes like any other.
      const after = await collect(d.allEvents({ after: marker.offset }));
      expect(after.map((e) => e.message)).toEqual(['y']);
    });
  });
}
