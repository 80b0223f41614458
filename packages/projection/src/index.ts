export {
  listProjections,
  type ProjectionInfo,
  resetProjection,
  skipProjection,
} from './projection-admin';
export { type FailedEvent, ProjectionFailedError, ProjectionRunningError } from './projection-errors';
export {
  type DeletionHandler,
  describeSource,
  type ProjectionBackoff,
  type ProjectionContext,
  type ProjectionHandler,
  type ProjectionOptions,
  type ProjectionSource,
} from './projection-options';
export type { ProjectionStatus } from './projection-records';
export {
  type ProjectionEnd,
  type ProjectionHandle,
  type ProjectionMetrics,
  type ProjectionState,
  runProjection,
} from './run-projection';
