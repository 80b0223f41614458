import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createPersistence, type HealthReport } from '@cairn/actor-core';
import { FileMessageJournal } from '@cairn/journal-file';
import { LmdbMessageJournal } from '@cairn/journal-lmdb';
import { registerPersistenceMetrics } from '@cairn/metrics';
import { Registry } from 'prom-client';

const check = (report: HealthReport, name: string) => report.checks.find((c) => c.name === name);

describe('health() of the disk backends', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'cairn-health-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  test('file: the lock is held, disk use is reported against maxDiskBytes (degraded near it)', async () => {
    const journal = await FileMessageJournal.open<string>({
      path: path.join(dir, 'j'),
      maxDiskBytes: 40_000,
    });
    try {
      expect(check(journal.health(), 'lock')).toMatchObject({ status: 'ok' });
      expect(check(journal.health(), 'disk')).toMatchObject({ status: 'ok' });
      await journal.appendBatch(
        'a',
        Array.from({ length: 14 }, () => 'x'.repeat(2500)),
      );
      const disk = check(journal.health(), 'disk')!;
      expect(disk.value).toBeGreaterThanOrEqual(0.8 * 40_000);
      expect(disk.status).toBe('degraded');
      expect(journal.health().status).toBe('degraded');
    } finally {
      await journal.close();
    }
    const readOnly = await FileMessageJournal.open({ path: path.join(dir, 'j'), readOnly: true });
    expect(check(readOnly.health(), 'lock')).toMatchObject({ status: 'ok', detail: /no lock/ });
    await readOnly.close();
  });

  test('lmdb: disk use (used pages) is reported', async () => {
    const journal = await LmdbMessageJournal.open<string>({ path: path.join(dir, 'l') });
    try {
      await journal.append('a', 'x'.repeat(100));
      expect(check(journal.health(), 'disk')).toMatchObject({ status: 'ok' });
      expect(check(journal.health(), 'disk')!.value).toBeGreaterThan(0);
    } finally {
      await journal.close();
    }
  });

  test('file snapshot store: the lock check; @cairn/metrics exports health as gauges', async () => {
    const persistence = await createPersistence({
      journal: { provider: 'file', path: path.join(dir, 'journal') },
      snapshots: { provider: 'file', path: path.join(dir, 'snapshots') },
    });
    const registry = new Registry();
    const unregister = registerPersistenceMetrics({
      journal: persistence.journal,
      snapshots: persistence.snapshots,
      registry,
    });
    try {
      const snapshots = persistence.snapshots as unknown as { health(): HealthReport };
      expect(check(snapshots.health(), 'lock')).toMatchObject({ status: 'ok' });
      const text = await registry.metrics();
      expect(text).toMatch(/^cairn_journal_health_status 0$/m);
      expect(text).toMatch(/^cairn_snapshot_store_health_status 0$/m);
      expect(text).toMatch(/^cairn_journal_disk_bytes \d+$/m);
    } finally {
      unregister();
      await persistence.close();
    }
    const text = await registry.metrics();
    expect(text).not.toMatch(/health_status/);
  });
});
