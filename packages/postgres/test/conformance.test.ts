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
} from '@cairn/testkit';
import { fastTestServerUrl, TestSchemas } from './pg-test-env';

const schemas = new TestSchemas('conf');
afterAll(() => schemas.dropAll());

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
