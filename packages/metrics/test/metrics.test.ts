import {
  ActorSystem,
  Effect,
  EventSourcedBehavior,
  MemoryMessageJournal,
  MemorySnapshotStore,
} from '@cairn/actor-core';
import { registerPersistenceMetrics } from '@cairn/metrics';
import { runProjection } from '@cairn/projection';
import { Counter, Registry } from 'prom-client';

/** The exposition's value of one sample line, e.g. `cairn_journal_commits_total{store="a"}`. */
function sampleValue(text: string, sample: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line === undefined ? undefined : Number(line.slice(sample.length + 1));
}

describe('registerPersistenceMetrics', () => {
  it("exposes a journal's and a snapshot store's counters, gauge and histograms, read at each scrape", async () => {
    const registry = new Registry();
    const journal = await MemoryMessageJournal.open();
    const snapshots = await MemorySnapshotStore.open();
    const unregister = registerPersistenceMetrics({ journal, snapshots, registry });
    await journal.appendBatch('a', [1, 2, 3]);
    await snapshots.save('a', 3, { n: 3 });
    await snapshots.loadLatest('a');

    let text = await registry.metrics();
    expect(text).toContain('# TYPE cairn_journal_events_appended_total counter');
    expect(text).toContain('# TYPE cairn_journal_pending_events gauge');
    expect(text).toContain('# TYPE cairn_journal_commit_seconds histogram');
    expect(sampleValue(text, 'cairn_journal_events_appended_total')).toBe(3);
    expect(sampleValue(text, 'cairn_journal_commits_total')).toBe(1);
    expect(sampleValue(text, 'cairn_journal_pending_events')).toBe(0);
    expect(sampleValue(text, 'cairn_journal_commit_seconds_count')).toBe(1);
    expect(sampleValue(text, 'cairn_journal_commit_seconds_bucket{le="+Inf"}')).toBe(1);
    expect(sampleValue(text, 'cairn_journal_commit_seconds_bucket{le="5"}')).toBe(1);
    expect(sampleValue(text, 'cairn_snapshot_saves_total')).toBe(1);
    expect(sampleValue(text, 'cairn_snapshot_loads_total')).toBe(1);
    expect(sampleValue(text, 'cairn_snapshot_load_seconds_count')).toBe(1);

    await journal.append('a', 4);
    text = await registry.metrics();
    expect(sampleValue(text, 'cairn_journal_events_appended_total')).toBe(4);

    unregister();
    expect(await registry.metrics()).not.toContain('cairn_');
    await journal.close();
    await snapshots.close();
  });

  it("exposes an actor system's actors and, through it, its journal and snapshot store", async () => {
    const registry = new Registry();
    const system = await ActorSystem.create({
      persistence: { journal: { provider: 'memory' }, snapshots: { provider: 'memory' } },
    });
    const unregister = registerPersistenceMetrics({ system, registry });
    const counter = (id: string) =>
      EventSourcedBehavior.create<'inc', 'incremented', number>({
        persistenceId: id,
        emptyState: 0,
        commandHandler: () => Effect.persist<'incremented', number>('incremented').thenReply((n) => n),
        eventHandler: (n) => n + 1,
      });
    const ref = await system.spawn(counter('one'));
    await ref.ask('inc');
    await system.spawn(counter('two'));
    system.registerEntity('counter', (id) => counter(`counter-${id}`));
    await system.entityRef('counter', 'a').ask('inc');
    const text = await registry.metrics();
    expect(sampleValue(text, 'cairn_entities_active')).toBe(1);
    expect(sampleValue(text, 'cairn_entity_activations_total')).toBe(1);
    expect(sampleValue(text, 'cairn_entity_passivations_total')).toBe(0);
    expect(sampleValue(text, 'cairn_actor_conflict_reloads_total')).toBe(0);
    expect(sampleValue(text, 'cairn_actors')).toBe(3);
    expect(sampleValue(text, 'cairn_actor_recoveries_total')).toBe(3);
    expect(sampleValue(text, 'cairn_actor_recovery_seconds_count')).toBe(3);
    expect(sampleValue(text, 'cairn_journal_events_appended_total')).toBe(2);
    expect(sampleValue(text, 'cairn_snapshot_loads_empty_total')).toBe(3);
    unregister();
    await system.terminate();
  });

  it('tells several stores apart by their labels, and removes one without the others', async () => {
    const registry = new Registry();
    const orders = await MemoryMessageJournal.open();
    const billing = await MemoryMessageJournal.open();
    const removeOrders = registerPersistenceMetrics({
      journal: orders,
      registry,
      labels: { store: 'orders' },
    });
    registerPersistenceMetrics({
      journal: billing,
      registry,
      labels: { store: 'billing' },
      prefix: 'cairn_',
    });
    await orders.append('x', 1);
    await billing.appendBatch('y', [1, 2]);
    let text = await registry.metrics();
    expect(sampleValue(text, 'cairn_journal_events_appended_total{store="orders"}')).toBe(1);
    expect(sampleValue(text, 'cairn_journal_events_appended_total{store="billing"}')).toBe(2);
    removeOrders();
    text = await registry.metrics();
    expect(sampleValue(text, 'cairn_journal_events_appended_total{store="orders"}')).toBeUndefined();
    expect(sampleValue(text, 'cairn_journal_events_appended_total{store="billing"}')).toBe(2);
    await orders.close();
    await billing.close();
  });

  it('refuses, registering nothing, what keeps no metrics, bad options and a name the registry already has', async () => {
    const registry = new Registry();
    const journal = await MemoryMessageJournal.open();
    expect(() => registerPersistenceMetrics({ journal: { append() {} }, registry })).toThrow(
      /keeps no metrics/,
    );
    expect(() => registerPersistenceMetrics({ registry })).toThrow(
      /needs an actor system, a journal, a snapshot store or projections/,
    );
    expect(() => registerPersistenceMetrics({ journal, registry, prefix: '9bad' })).toThrow(/prefix/);
    expect(() => registerPersistenceMetrics({ journal, registry, labels: { le: 'x' } })).toThrow(/label/);
    new Counter({ name: 'cairn_journal_commits_total', help: 'someone else', registers: [registry] });
    expect(() => registerPersistenceMetrics({ journal, registry })).toThrow(/already has a metric/);
    expect(registry.getMetricsAsArray().map((m) => m.name)).toEqual(['cairn_journal_commits_total']);
    await journal.close();
  });

  it("exposes each projection's handled events, lag, retries, checkpoints and state, labelled by name", async () => {
    const registry = new Registry();
    const journal = await MemoryMessageJournal.open();
    const offsets = journal.offsetStore();
    await journal.appendBatch('a', [1, 2, 3], { tags: ['t'] });
    let failOnce = true;
    const handle = await runProjection({
      name: 'totals',
      query: journal,
      source: { tag: 't' },
      offsets,
      backoff: { minBackoffMs: 1, maxBackoffMs: 1, jitter: 0 },
      handler: () => {
        if (failOnce) {
          failOnce = false;
          throw new Error('once');
        }
      },
    });
    const unregister = registerPersistenceMetrics({ projections: [handle], registry, labels: { app: 'x' } });
    while (handle.metrics().eventsHandled < 3) await new Promise((r) => setTimeout(r, 2));
    let text = await registry.metrics();
    const labels = '{app="x",projection="totals"}';
    expect(text).toContain('# TYPE cairn_projection_events_handled_total counter');
    expect(sampleValue(text, `cairn_projection_events_handled_total${labels}`)).toBe(3);
    expect(sampleValue(text, `cairn_projection_retries_total${labels}`)).toBe(1);
    expect(sampleValue(text, `cairn_projection_state${labels}`)).toBe(0);
    expect(sampleValue(text, `cairn_projection_lag_seconds${labels}`)).toBeGreaterThanOrEqual(0);
    expect(sampleValue(text, `cairn_projection_behind_seconds${labels}`)).toBeGreaterThanOrEqual(0);
    expect(sampleValue(text, `cairn_projection_health_status${labels}`)).toBe(0);
    await handle.stop();
    text = await registry.metrics();
    expect(sampleValue(text, `cairn_projection_state${labels}`)).toBe(1);
    expect(sampleValue(text, `cairn_projection_health_status${labels}`)).toBe(1);
    expect(sampleValue(text, `cairn_projection_checkpoints_total${labels}`)).toBe(1);
    unregister();
    expect(await registry.metrics()).not.toContain('cairn_projection');
    expect(() => registerPersistenceMetrics({ projections: [{}], registry })).toThrow(/keeps no metrics/);
    await journal.close();
  });
});
