/**
 * Type-level conformance: every backend class satisfies the SPI of the public contract. If one stops doing so,
 * `npm run typecheck` (part of `npm test`) stops compiling; the runtime assertions below only make jest
 * count the file.
 */
import {
  type BatchedMessageJournal,
  type MemoryMessageJournal,
  type MemorySnapshotStore,
  memoryProvider,
  type PersistenceProvider,
  type SnapshotStore,
} from '@cairn/actor-core';
import { type FileMessageJournal, provider as fileProvider } from '@cairn/journal-file';
import {
  type LmdbMessageJournal,
  type LmdbSnapshotStore,
  provider as lmdbProvider,
} from '@cairn/journal-lmdb';
import type { FileSnapshotStore } from '@cairn/snapshot';

type Journal = BatchedMessageJournal<{ type: string }>;
type Snapshots = SnapshotStore<{ balance: number }>;

const journals: Array<(j: never) => Journal> = [
  (j: MemoryMessageJournal<{ type: string }>) => j,
  (j: FileMessageJournal<{ type: string }>) => j,
  (j: LmdbMessageJournal<{ type: string }>) => j,
];
const snapshotStores: Array<(s: never) => Snapshots> = [
  (s: MemorySnapshotStore<{ balance: number }>) => s,
  (s: FileSnapshotStore<{ balance: number }>) => s,
  (s: LmdbSnapshotStore<{ balance: number }>) => s,
];
const providers: PersistenceProvider[] = [memoryProvider, fileProvider, lmdbProvider];

it('every backend satisfies the SPI (checked by the compiler)', () => {
  expect(journals).toHaveLength(3);
  expect(snapshotStores).toHaveLength(3);
  expect(providers.map((p) => p.name)).toEqual(['memory', 'file', 'lmdb']);
});
