import {
  ActorSystem,
  canReportHealth,
  createPersistence,
  type HealthReport,
  JournalCorruptedError,
  MemoryFaults,
  MemoryMessageJournal,
  MemorySnapshotStore,
} from '../src';

const check = (report: HealthReport, name: string) => report.checks.find((c) => c.name === name);

describe('health()', () => {
  test('journal: ok when fine; a failed commit fails it until one succeeds; corruption seen degrades it; closed fails it', async () => {
    const faults = new MemoryFaults();
    const journal = await MemoryMessageJournal.open<string>({ faults });
    expect(canReportHealth(journal)).toBe(true);
    expect(journal.health()).toMatchObject({ status: 'ok' });
    expect(journal.health().checks.map((c) => c.name)).toEqual([
      'open',
      'last-commit',
      'pending',
      'corruption',
    ]);

    await journal.append('a', 'one');
    expect(check(journal.health(), 'last-commit')).toMatchObject({ status: 'ok' });
    expect(check(journal.health(), 'last-commit')!.value).toBeGreaterThanOrEqual(0);

    faults.failNextWrite();
    await expect(journal.append('a', 'two')).rejects.toThrow(/injected write failure/);
    expect(journal.health().status).toBe('failed');
    expect(check(journal.health(), 'last-commit')).toMatchObject({
      status: 'failed',
      detail: expect.stringMatching(/injected write failure/),
    });
    await journal.append('a', 'three');
    expect(journal.health().status).toBe('ok');

    faults.failNextRead(new JournalCorruptedError({ persistenceId: 'a', sequenceNr: 1, reason: 'flipped' }));
    await expect(async () => {
      for await (const _ of journal.readFrom('a', 1));
    }).rejects.toThrow(JournalCorruptedError);
    expect(journal.health()).toMatchObject({ status: 'degraded' });
    expect(check(journal.health(), 'corruption')).toMatchObject({ status: 'degraded', value: 1 });

    await journal.close();
    expect(check(journal.health(), 'open')).toMatchObject({ status: 'failed' });
  });

  test('journal: the pending check degrades while appends wait for room', async () => {
    const faults = new MemoryFaults();
    faults.writeDelayMs = 30;
    const journal = await MemoryMessageJournal.open<number>({ faults, maxPendingEvents: 2 });
    await journal.highestSequenceNr('p');
    const appends = [1, 2, 3, 4].map((n) => journal.append('p', n));
    expect(check(journal.health(), 'pending')).toMatchObject({ status: 'degraded' });
    await Promise.all(appends);
    expect(check(journal.health(), 'pending')).toMatchObject({ status: 'ok', value: 0 });
    await journal.close();
  });

  test('snapshot store: a failed save fails it until one succeeds', async () => {
    const faults = new MemoryFaults();
    const store = await MemorySnapshotStore.open({ faults });
    expect(canReportHealth(store)).toBe(true);
    expect(store.health().status).toBe('ok');
    faults.failNextSnapshotSave();
    await expect(store.save('s', 1, { n: 1 })).rejects.toThrow();
    expect(check(store.health(), 'last-save')).toMatchObject({ status: 'failed' });
    await store.save('s', 1, { n: 1 });
    expect(store.health().status).toBe('ok');
    await store.close();
    expect(store.health().status).toBe('failed');
  });

  test("actor system: its own checks and its stores', prefixed; failed once terminated", async () => {
    const persistence = await createPersistence({
      journal: { provider: 'memory' },
      snapshots: { provider: 'memory' },
    });
    const system = await ActorSystem.create({ persistence });
    const report = system.health();
    expect(report.status).toBe('ok');
    expect(report.checks.map((c) => c.name)).toEqual([
      'system',
      'actors',
      'journal.open',
      'journal.last-commit',
      'journal.pending',
      'journal.corruption',
      'snapshots.open',
      'snapshots.last-save',
      'snapshots.corruption',
    ]);
    await system.terminate();
    expect(system.health().status).toBe('failed');
    await persistence.close();
  });
});
