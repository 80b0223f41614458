// The whole conformance kit under node:test: `node --test test/` (jest runs this file in a child process).
import { describe, test } from 'node:test';
import { journalConformance, snapshotConformance } from '@cairn/testkit';
import { expect } from 'expect';
import { JsonlJournal, JsonlSnapshotStore } from '../dist/index.js';

const runner = { describe, test, expect, skip: (t, reason) => t.skip(reason) };

journalConformance({
  name: 'jsonl',
  runner,
  create: ({ dir }) => JsonlJournal.open({ path: dir }),
  modelRuns: 10,
});

snapshotConformance({
  name: 'jsonl',
  runner,
  create: ({ dir }) => JsonlSnapshotStore.open({ path: dir }),
});
