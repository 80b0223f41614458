import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createPersistence, type PersistenceConfig } from '@cairn/actor-core';
import { crashEvent, flipByte, verifyAcknowledged } from '@cairn/testkit';

/**
 * The torture checker itself. A flip in the format marker (cairn-store.json, a few dozen bytes among
 * megabytes, so a corrupting round picks it rarely) makes the store refuse to open with
 * StoreMismatchError naming the marker: typed, nothing served or written. The checker took only the two
 * corruption codes as detection and reported this as a violation of the round.
 */
describe.each(['file', 'lmdb'])('torture checker on %s', (provider) => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'cairn-checker-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  test('a damaged format marker counts as detected corruption, not as a violation', async () => {
    const config: PersistenceConfig = {
      journal: { provider, path: path.join(dir, 'journal') },
      snapshots: { provider, path: path.join(dir, 'snapshots') },
    };
    const persistence = await createPersistence(config);
    await persistence.journal.appendBatch('m-0', [crashEvent(0, 1), crashEvent(0, 2)]);
    await persistence.close();
    const acknowledged = { events: new Map([[0, 2]]), snapshots: new Map<number, number>() };
    const intact = await verifyAcknowledged(config, acknowledged, { prefix: 'm' });
    expect(intact).toMatchObject({ problems: [], corruptionDetected: [], checked: 2 });

    await flipByte(path.join(dir, 'journal', 'cairn-store.json'), { offset: 0 });
    const damaged = await verifyAcknowledged(config, acknowledged, { prefix: 'm', durable: false });
    expect(damaged.problems).toEqual([]);
    expect(damaged.corruptionDetected).toEqual([expect.stringMatching(/cairn-store\.json/)]);
  });
});
