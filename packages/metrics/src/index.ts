import {
  type ActorSystemMetrics,
  type HealthReport,
  healthStatusValue,
  type JournalMetrics,
  type LatencyHistogram,
  type SnapshotStoreMetrics,
} from '@cairn/actor-core';
import type { ProjectionMetrics } from '@cairn/projection';
import { register as defaultRegistry, type Registry } from 'prom-client';

export interface PersistenceMetricsOptions {
  /**
   * An ActorSystem: its actors' metrics (live actors, recoveries, restarts, ...) and, unless `journal` or
   * `snapshots` name others, those of its journal and snapshot store.
   */
  readonly system?: unknown;
  /** The journal to expose (e.g. `createPersistence(...).journal`). */
  readonly journal?: unknown;
  /** The snapshot store to expose. */
  readonly snapshots?: unknown;
  /**
   * Projection handles (what `runProjection` of @cairn/projection resolves to); each one's values carry
   * the label `projection` with its name.
   */
  readonly projections?: readonly unknown[];
  /** Where the metrics go. Default: prom-client's global registry. */
  readonly registry?: Registry;
  /** Prepended to every metric name. Default `cairn_`. */
  readonly prefix?: string;
  /**
   * Labels on every value of these stores, to tell several apart in one registry (say
   * `{ store: 'orders' }`). Stores registered without labels and with them cannot share a registry.
   */
  readonly labels?: Readonly<Record<string, string>>;
}

type Labels = Readonly<Record<string, string>>;
type Sample = { readonly value: number; readonly labels: Labels; readonly metricName?: string };
type Kind = 'counter' | 'gauge' | 'histogram';

/**
 * One metric whose values are read from the stores when the registry is scraped (prom-client calls
 * `get()`): the stores keep the numbers, so nothing is counted twice and nothing runs between scrapes.
 */
class ScrapedMetric {
  readonly aggregator = 'sum';
  private readonly sources = new Set<{
    readonly labels: Labels;
    readonly read: () => number | LatencyHistogram;
  }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: Kind,
  ) {}

  add(labels: Labels, read: () => number | LatencyHistogram): () => boolean {
    const source = { labels, read };
    this.sources.add(source);
    return () => {
      this.sources.delete(source);
      return this.sources.size === 0;
    };
  }

  async get(): Promise<{ name: string; help: string; type: Kind; aggregator: string; values: Sample[] }> {
    const values: Sample[] = [];
    for (const { labels, read } of this.sources) {
      const value = read();
      if (typeof value === 'number') {
        values.push({ value, labels });
        continue;
      }
      for (const { le, count } of value.buckets) {
        values.push({
          value: count,
          labels: { ...labels, le: String(le) },
          metricName: `${this.name}_bucket`,
        });
      }
      values.push({
        value: value.count,
        labels: { ...labels, le: '+Inf' },
        metricName: `${this.name}_bucket`,
      });
      values.push({ value: value.sum, labels, metricName: `${this.name}_sum` });
      values.push({ value: value.count, labels, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

type Definition<M> = readonly [
  name: string,
  kind: Kind,
  help: string,
  read: (m: M) => number | LatencyHistogram,
];

const JOURNAL: ReadonlyArray<Definition<JournalMetrics>> = [
  ['journal_events_appended_total', 'counter', 'Events stored and acknowledged', (m) => m.eventsAppended],
  [
    'journal_commits_total',
    'counter',
    'Group commits stored (one write and one sync each)',
    (m) => m.commits,
  ],
  [
    'journal_commit_failures_total',
    'counter',
    'Group commits that failed in storage (their appends were rejected)',
    (m) => m.commitFailures,
  ],
  [
    'journal_serialization_rejections_total',
    'counter',
    'Appends refused because a message cannot be serialized',
    (m) => m.serializationRejections,
  ],
  [
    'journal_sequence_conflicts_total',
    'counter',
    'Appends refused because another writer got there first',
    (m) => m.sequenceConflicts,
  ],
  [
    'journal_pending_events',
    'gauge',
    'Events numbered and waiting for their commit (the write-ahead lag)',
    (m) => m.pendingEvents,
  ],
  [
    'journal_pending_bytes',
    'gauge',
    'Serialized bytes of the events waiting for their commit (bounded by maxPendingBytes)',
    (m) => m.pendingBytes,
  ],
  [
    'journal_backpressure_waiting',
    'gauge',
    'Appends waiting for room under maxPendingEvents/maxPendingBytes now',
    (m) => m.backpressureWaiting,
  ],
  [
    'journal_backpressure_waits_total',
    'counter',
    'Appends that had to wait for room (onBackpressure wait)',
    (m) => m.backpressureWaits,
  ],
  [
    'journal_backpressure_rejections_total',
    'counter',
    'Appends refused with BackpressureError (onBackpressure reject)',
    (m) => m.backpressureRejections,
  ],
  ['journal_events_read_total', 'counter', 'Events served by readFrom', (m) => m.eventsRead],
  [
    'journal_corruptions_detected_total',
    'counter',
    'Reads that stopped at corruption (JournalCorruptedError)',
    (m) => m.corruptionsDetected,
  ],
  [
    'journal_commit_seconds',
    'histogram',
    'From a group commit starting to its outcome',
    (m) => m.commitSeconds,
  ],
];

/** Registered for a journal that measures its disk use (file, LMDB), and for one with a cap. */
const JOURNAL_DISK_USED: Definition<JournalMetrics> = [
  'journal_disk_bytes',
  'gauge',
  "Bytes of disk the journal's data uses (file: live segments; LMDB: used pages)",
  (m) => m.diskBytesUsed ?? 0,
];
const JOURNAL_DISK_CAP: Definition<JournalMetrics> = [
  'journal_max_disk_bytes',
  'gauge',
  "The journal's maxDiskBytes: appends are refused once journal_disk_bytes would pass it",
  (m) => m.maxDiskBytes ?? 0,
];

/** A health() report as a gauge: 0 ok, 1 degraded, 2 failed (alert on 2, look at 1). */
function healthGauge(what: string): Definition<HealthReport> {
  return [
    `${what}_health_status`,
    'gauge',
    `The ${what.replace('_', ' ')}'s health(): 0 ok, 1 degraded, 2 failed (the worst of its checks)`,
    (h) => healthStatusValue(h.status),
  ];
}

/** health() of a store or system that declares it (capability `health`; an ActorSystem always has it). */
function reportsHealth(store: unknown): { health(): HealthReport } | undefined {
  const s = store as { health?: unknown; capabilities?: { health?: unknown } } | undefined;
  if (typeof s?.health !== 'function') return undefined;
  if (s.capabilities !== undefined && s.capabilities.health !== true) return undefined;
  return s as { health(): HealthReport };
}

const SNAPSHOTS: ReadonlyArray<Definition<SnapshotStoreMetrics>> = [
  ['snapshot_saves_total', 'counter', 'Snapshots stored', (m) => m.saves],
  ['snapshot_save_failures_total', 'counter', 'Snapshot saves that failed in storage', (m) => m.saveFailures],
  ['snapshot_loads_total', 'counter', 'loadLatest calls that found a snapshot', (m) => m.loads],
  [
    'snapshot_loads_empty_total',
    'counter',
    'loadLatest calls that found none that verifies',
    (m) => m.loadsEmpty,
  ],
  [
    'snapshot_corrupt_skipped_total',
    'counter',
    'Corrupt snapshots skipped in favour of an older one',
    (m) => m.corruptSkipped,
  ],
  ['snapshot_deleted_total', 'counter', 'Snapshots removed by delete and prune', (m) => m.deleted],
  ['snapshot_save_seconds', 'histogram', 'From a save being queued to its outcome', (m) => m.saveSeconds],
  [
    'snapshot_load_seconds',
    'histogram',
    'From a loadLatest being queued to its outcome',
    (m) => m.loadSeconds,
  ],
];

const SYSTEM: ReadonlyArray<Definition<ActorSystemMetrics>> = [
  ['actors', 'gauge', 'Live actors (recovering, running or waiting for a restart)', (m) => m.actors],
  [
    'actor_recoveries_total',
    'counter',
    'Recoveries that completed (first starts and restarts)',
    (m) => m.recoveries,
  ],
  ['actor_recovery_failures_total', 'counter', 'Recoveries that failed', (m) => m.recoveryFailures],
  [
    'actor_recoveries_from_snapshot_total',
    'counter',
    'Recoveries that started from a snapshot',
    (m) => m.recoveriesFromSnapshot,
  ],
  ['actor_events_replayed_total', 'counter', 'Events replayed by recoveries', (m) => m.eventsReplayed],
  ['actor_restarts_total', 'counter', 'Restarts scheduled by supervision after a failure', (m) => m.restarts],
  ['actor_failure_stops_total', 'counter', 'Actors stopped by a failure', (m) => m.failureStops],
  [
    'actor_stash_overflows_total',
    'counter',
    "Commands refused because an actor's stash was full",
    (m) => m.stashOverflows,
  ],
  [
    'actor_conflict_reloads_total',
    'counter',
    'Persists refused by a sequence conflict after which the actor reloaded from storage',
    (m) => m.conflictReloads,
  ],
  ['entities_active', 'gauge', 'Entity actors live now', (m) => m.activeEntities],
  [
    'entity_activations_total',
    'counter',
    'Entity actors started (first message, or the first after a passivation)',
    (m) => m.entityActivations,
  ],
  [
    'entity_passivations_total',
    'counter',
    'Entity actors stopped by passivation (idle, least recently used, or Effect.stop)',
    (m) => m.entityPassivations,
  ],
  [
    'actor_recovery_seconds',
    'histogram',
    'From a recovery starting to its outcome',
    (m) => m.recoverySeconds,
  ],
];

const PROJECTION_STATES: Readonly<Record<ProjectionMetrics['state'], number>> = {
  running: 0,
  stopped: 1,
  failed: 2,
};

const PROJECTIONS: ReadonlyArray<Definition<ProjectionMetrics>> = [
  [
    'projection_events_handled_total',
    'counter',
    'Events whose projection handler resolved',
    (m) => m.eventsHandled,
  ],
  [
    'projection_lag_seconds',
    'gauge',
    'From the timestamp of the last event a projection handled to now (0 before the first)',
    (m) => (m.lagMs ?? 0) / 1000,
  ],
  [
    'projection_retries_total',
    'counter',
    'Handler, query and checkpoint errors a projection retried after a backoff',
    (m) => m.retries,
  ],
  [
    'projection_behind_seconds',
    'gauge',
    'How far behind the journal a projection is: the age of the event in hand, else how old the last one was when handled',
    (m) => m.behindMs / 1000,
  ],
  ['projection_checkpoints_total', 'counter', 'Offsets a projection saved', (m) => m.checkpoints],
  [
    'projection_state',
    'gauge',
    "A projection's state: 0 running, 1 stopped, 2 failed (alert on 2)",
    (m) => PROJECTION_STATES[m.state],
  ],
];

/** The metrics this package put in each registry, shared by every store registered there. */
const registered = new WeakMap<Registry, Map<string, ScrapedMetric>>();

const BUILT_ON: Readonly<Record<string, string>> = {
  journal: "Cairn's AbstractMessageJournal",
  'snapshot store': "Cairn's AbstractSnapshotStore",
  'actor system': "Cairn's ActorSystem",
  projection: "@cairn/projection's runProjection",
};

function keepsMetrics(store: unknown): boolean {
  return typeof (store as { metrics?: unknown } | undefined)?.metrics === 'function';
}

function metered<M>(store: unknown, what: string): { metrics(): M } {
  if (!keepsMetrics(store)) {
    throw new TypeError(`the ${what} keeps no metrics: it must be built on ${BUILT_ON[what]}`);
  }
  return store as { metrics(): M };
}

/**
 * Exposes an actor system's, a journal's, a snapshot store's and projections' metrics in a prom-client registry, read from the stores at
 * each scrape. Returns a function that removes them again (the metric families go once no store is left
 * in them). Throws TypeError, registering nothing, for a store that keeps no metrics or a bad option.
 *
 *   registerPersistenceMetrics({ system }); // its actors, journal and snapshot store
 *   // GET /metrics: res.end(await register.metrics())
 */
export function registerPersistenceMetrics(options: PersistenceMetricsOptions): () => void {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError('registerPersistenceMetrics needs an options object');
  }
  const { registry = defaultRegistry, prefix = 'cairn_', labels = {} } = options;
  if (typeof prefix !== 'string' || !/^[a-zA-Z_:][a-zA-Z0-9_:]*$|^$/.test(prefix)) {
    throw new TypeError(
      `prefix must be a valid start of a Prometheus metric name, got ${JSON.stringify(prefix)}`,
    );
  }
  for (const [name, value] of Object.entries(labels)) {
    if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(name) || name === 'le' || typeof value !== 'string') {
      throw new TypeError(
        `labels: ${JSON.stringify(name)} must be a Prometheus label name (not "le") with a string value`,
      );
    }
  }
  const sources: Array<readonly [Definition<never>, () => unknown, Labels]> = [];
  const system = options.system as { journal?: unknown; snapshots?: unknown } | undefined;
  if (system !== undefined) {
    const actors = metered<ActorSystemMetrics>(system, 'actor system');
    for (const d of SYSTEM) sources.push([d as Definition<never>, () => actors.metrics(), labels]);
    const healthy = reportsHealth(system);
    if (healthy) sources.push([healthGauge('system') as Definition<never>, () => healthy.health(), labels]);
  }
  // A system's own stores count too unless others are named; stores that keep no metrics are left out.
  const journalStore = options.journal ?? (keepsMetrics(system?.journal) ? system?.journal : undefined);
  const snapshotStore =
    options.snapshots ?? (keepsMetrics(system?.snapshots) ? system?.snapshots : undefined);
  if (journalStore !== undefined) {
    const journal = metered<JournalMetrics>(journalStore, 'journal');
    const now = journal.metrics();
    const definitions = [
      ...JOURNAL,
      ...(now.diskBytesUsed !== undefined ? [JOURNAL_DISK_USED] : []),
      ...(now.maxDiskBytes !== undefined ? [JOURNAL_DISK_CAP] : []),
    ];
    for (const d of definitions) sources.push([d as Definition<never>, () => journal.metrics(), labels]);
    const healthy = reportsHealth(journalStore);
    if (healthy) sources.push([healthGauge('journal') as Definition<never>, () => healthy.health(), labels]);
  }
  if (snapshotStore !== undefined) {
    const snapshots = metered<SnapshotStoreMetrics>(snapshotStore, 'snapshot store');
    for (const d of SNAPSHOTS) sources.push([d as Definition<never>, () => snapshots.metrics(), labels]);
    const healthy = reportsHealth(snapshotStore);
    if (healthy)
      sources.push([healthGauge('snapshot_store') as Definition<never>, () => healthy.health(), labels]);
  }
  if (options.projections !== undefined && !Array.isArray(options.projections)) {
    throw new TypeError('projections must be an array of projection handles');
  }
  for (const handle of options.projections ?? []) {
    const projection = metered<ProjectionMetrics>(handle, 'projection');
    const withName = { ...labels, projection: projection.metrics().name };
    for (const d of PROJECTIONS) sources.push([d as Definition<never>, () => projection.metrics(), withName]);
    const healthy = reportsHealth(handle);
    if (healthy)
      sources.push([healthGauge('projection') as Definition<never>, () => healthy.health(), withName]);
  }
  if (sources.length === 0) {
    throw new TypeError(
      'registerPersistenceMetrics needs an actor system, a journal, a snapshot store or projections',
    );
  }

  let mine = registered.get(registry);
  if (!mine) {
    mine = new Map();
    registered.set(registry, mine);
  }
  for (const [[name]] of sources) {
    const existing = registry.getSingleMetric(`${prefix}${name}`) as unknown;
    if (existing !== undefined && existing !== mine.get(`${prefix}${name}`)) {
      throw new TypeError(
        `the registry already has a metric ${prefix}${name} of its own; use another prefix`,
      );
    }
  }
  const removers: Array<() => void> = [];
  for (const [[name, kind, help, read], snapshot, sourceLabels] of sources) {
    const fullName = `${prefix}${name}`;
    let metric = mine.get(fullName);
    if (!metric) {
      metric = new ScrapedMetric(fullName, help, kind);
      registry.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0]);
      mine.set(fullName, metric);
    }
    const remove = metric.add(sourceLabels, () => read(snapshot() as never));
    const owner = metric;
    removers.push(() => {
      if (!remove()) return;
      if (registry.getSingleMetric(fullName) === (owner as unknown)) registry.removeSingleMetric(fullName);
      mine.delete(fullName);
    });
  }
  return () => {
    for (const remove of removers.splice(0)) remove();
  };
}
