export { type CopyOptions, type CopyResult, copyData, type IdCopy, type SalvageOutcome } from './copy';
export {
  type CopySource,
  type CopyTarget,
  dumpAsSource,
  dumpAsTarget,
  storesAsSource,
  storesAsTarget,
} from './copy-adapters';
export { type KeptByTarget, verifyCopy } from './copy-verify';
export { DUMP_FORMAT, DUMP_VERSION, DumpReader, DumpWriter } from './dump-file';
export {
  EXIT_OK,
  EXIT_PROBLEMS,
  EXIT_UNSUPPORTED,
  EXIT_USAGE,
  UnsupportedError,
  UsageError,
} from './exit-codes';
export { type DirectoryStats, type IdSummary, listIds, type StoreStats, storeStats } from './inventory';
export { describeStore, type OpenedStores, openStores } from './open-stores';
export { type RunCliOptions, runCli } from './program';
export { type CorruptionRepairable, planRepair, type RepairPlan, repairAfterCorruption } from './repair';
export {
  type DetectedBackend,
  detectJournalBackend,
  detectSnapshotBackend,
  type ResolvedStores,
  resolveStores,
  type StoreSelection,
} from './store-location';
export type { CliOutput } from './terminal-output';
export {
  checkJournalId,
  formatProblem,
  type JournalIdCheck,
  type Problem,
  type VerifyOptions,
  type VerifyResult,
  verifyStores,
} from './verify';
