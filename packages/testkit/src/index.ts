export {
  CaseContext,
  type Closable,
  type ConformanceCapabilities,
  collect,
  declaredCapabilities,
  type FactoryContext,
  freshId,
  LIFECYCLES,
  type Lifecycle,
} from './conformance-context';
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
  journalMessagesGroup,
  journalReopenGroup,
  journalTruncationGroup,
  journalValidationGroup,
} from './journal-conformance';
export { journalModelGroup } from './journal-model';
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
  snapshotReopenGroup,
  snapshotSaveLoadGroup,
  snapshotValidationGroup,
} from './snapshot-conformance';
