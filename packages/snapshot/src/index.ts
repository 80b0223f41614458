export {
  decodeSnapshotEnvelope,
  type EnvelopeSource,
  encodeSnapshotEnvelope,
  SNAPSHOT_ENVELOPE_OVERHEAD,
  SNAPSHOT_FORMAT_VERSION,
  SNAPSHOT_MAGIC,
} from './envelope';
