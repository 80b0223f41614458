export {
  type BehaviorTestKit,
  type BehaviorTestKitOptions,
  behaviorTestKit,
  type CommandResult,
} from './behavior-testkit';
export {
  CaseContext,
  CaseSkipped,
  type Closable,
  type ConformanceExpect,
  type ConformanceRunner,
  collect,
  type FactoryContext,
  freshId,
  LIFECYCLES,
  type Lifecycle,
  type RunnerOption,
  runnerOf,
} from './conformance-context';
export {
  type CorruptionReport,
  deleteFile,
  flipBit,
  flipByte,
  type InjectorName,
  injectRandomCorruption,
  leaveStaleLock,
  listDataFiles,
  type Random,
  seededRandom,
  truncateTail,
  zeroRange,
} from './corruption';
export { type CrashWriterSpec, crashEvent, crashState } from './crash-events';
export {
  type Acknowledged,
  CRASH_WRITER_FILE,
  type CrashRoundOptions,
  type CrashRoundResult,
  runCrashRound,
  type VerifyOptions,
  type VerifyResult,
  verifyAcknowledged,
} from './crash-harness';
export {
  type JournalCase,
  type JournalConformanceOptions,
  journalAppendReadGroup,
  journalBatchGroup,
  journalCapabilitiesGroup,
  journalCase,
  journalCloseGroup,
  journalConcurrencyGroup,
  journalConformance,
  journalExpectedSequenceGroup,
  journalIdsGroup,
  journalImportGroup,
  journalMessagesGroup,
  journalReopenGroup,
  journalTruncationGroup,
  journalValidationGroup,
} from './journal-conformance';
export { journalDeletionGroup } from './journal-deletion';
export { journalModelGroup } from './journal-model';
export { journalQueryGroup } from './journal-query';
export { journalQueryModelGroup } from './journal-query-model';
export {
  startThrowawayPostgres,
  type ThrowawayPostgres,
  type ThrowawayPostgresOptions,
} from './postgres-server';
export {
  captureResources,
  expectNoLeakedResources,
  findLeakedResources,
  type ResourceSnapshot,
} from './resources';
export {
  type SnapshotCase,
  type SnapshotConformanceOptions,
  snapshotCase,
  snapshotCloseGroup,
  snapshotConformance,
  snapshotCriteriaGroup,
  snapshotDeleteGroup,
  snapshotListIdsGroup,
  snapshotReopenGroup,
  snapshotSaveLoadGroup,
  snapshotValidationGroup,
} from './snapshot-conformance';
export {
  isDurableConfig,
  runTorture,
  type TortureOptions,
  type TortureRound,
  type TortureSummary,
} from './torture';
