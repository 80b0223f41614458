import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createPersistence, type PersistenceConfig } from '@cairn/actor-core';
import { crashEvent, crashState, verifyAcknowledged } from '@cairn/testkit';

describe('verifyAcknowledged', () => {
  let dir: string;
  let config: PersistenceConfig;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'cairn-verify-'));
    config = {
      journal: { provider: 'file', path: path.join(dir, 'journal'), fsync: false, ioThreads: 1 },
      snapshots: { provider: 'file', path: path.join(dir, 'snapshots'), fsync: false, ioThreads: 1 },
    };
    // The journal lost events 9 and 10 (as a cut tail would), the snapshot at 10 is intact.
    const p = await createPersistence(config);
    for (let seq = 1; seq <= 8; seq++) await p.journal.append('crash-0', crashEvent(0, seq));
    await p.snapshots.save('crash-0', 10, crashState(0, 10));
    await p.close();
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  const acknowledged = { events: new Map([[0, 10]]), snapshots: new Map([[0, 10]]) };

  it('where acknowledged events may be lost (a damaged copy), a snapshot past the cut journal is detection', async () => {
    const result = await verifyAcknowledged(config, acknowledged, { durable: false });
    expect(result.problems).toEqual([]);
    expect(result.lost).toBe(2);
    expect(result.corruptionDetected).toEqual(['crash-0: snapshot at 10 is ahead of the journal (8)']);
  });

  it('where they must survive, both are violations', async () => {
    const result = await verifyAcknowledged(config, acknowledged, { durable: true });
    expect(result.problems).toEqual([
      'crash-0: acknowledged up to 10, journal ends at 8',
      'crash-0: snapshot at 10 is ahead of the journal (8)',
    ]);
  });
});
