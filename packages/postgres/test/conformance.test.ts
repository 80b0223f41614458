import { PostgresMessageJournal, PostgresSnapshotStore } from '@cairn/postgres';
import {
  type JournalConformanceOptions,
  journalBatchGroup,
  journalConcurrencyGroup,
  journalConformance,
  journalExpectedSequenceGroup,
  journalModelGroup,
  journalQueryModelGroup,
  snapshotConformance,
  startThrowawayPostgres,
  type ThrowawayPostgres,
} from '@cairn/testkit';
import { TestSchemas } from './pg-test-env';

/**
 * A server of this file's own (synchronous_commit off: these are tests of behaviour, not durability). The
 * query tests expect a live query to deliver within tens of milliseconds, and a transaction open anywhere
 * on a server holds every reader back until it ends (the global order's xmin rule): on the run's shared
 * server, the other test files' transactions would.
 */
let server: ThrowawayPostgres | undefined;
const fastTestServerUrl = () => server!.url;
const schemas = new TestSchemas('conf', fastTestServerUrl);
beforeAll(async () => {
  server = await startThrowawayPostgres({ settings: { synchronous_commit: 'off' } });
}, 120_000);
afterAll(async () => {
  await schemas.dropAll();
  await server?.stop();
}, 60_000);

journalConformance({
  name: 'postgres',
  create: async ({ dir }) =>
    PostgresMessageJournal.open({ connectionString: fastTestServerUrl(), schema: await schemas.forKey(dir) }),
  queryModelRuns: 10,
});

// The batching edge cases again (one commit per 3 entries, no delay, 2 connections): the groups about
// concurrent appends and expectations, and the model test; the rest does not depend on batching.
const smallBatches: JournalConformanceOptions = {
  name: 'postgres (batches of 3, no delay, pool of 2)',
  create: async ({ dir }) =>
    PostgresMessageJournal.open({
      connectionString: fastTestServerUrl(),
      schema: await schemas.forKey(dir),
      maxBatchSize: 3,
      maxBatchDelayMs: 0,
      poolSize: 2,
    }),
  modelRuns: 5,
  queryModelRuns: 5,
};
describe(`${smallBatches.name} journal conformance`, () => {
  journalConcurrencyGroup(smallBatches);
  journalExpectedSequenceGroup(smallBatches);
  journalBatchGroup(smallBatches);
  journalModelGroup(smallBatches);
  journalQueryModelGroup(smallBatches);
});

snapshotConformance({
  name: 'postgres',
  create: async ({ dir }) =>
    PostgresSnapshotStore.open({ connectionString: fastTestServerUrl(), schema: await schemas.forKey(dir) }),
});
