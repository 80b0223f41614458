import { createHash } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import {
  AbstractSnapshotStore,
  checkDirectoryPath,
  checkOpenOptions,
  crc32,
  type OptionSchema,
  SNAPSHOT_OPTION_TYPES,
  SnapshotCorruptedError,
  type SnapshotMetadata,
  type SnapshotStoreCapabilities,
  type SnapshotStoreOptions,
  StorageError,
  type StoredSnapshot,
} from '@cairn/actor-core';

export interface JsonlSnapshotStoreOptions extends SnapshotStoreOptions {
  /** The directory holding one sub-directory per persistence id; created when missing (not with readOnly). */
  readonly path: string;
}

/** Every option JsonlSnapshotStore.open takes: the one schema open() and the provider's validateOptions check. */
export const JSONL_SNAPSHOT_OPTIONS: OptionSchema = {
  ...SNAPSHOT_OPTION_TYPES,
  path: 'string',
  readOnly: 'boolean',
};

const NAME = /^(\d+)-(\d+)\.json$/;
const ID_FILE = 'id';

/**
 * Snapshots as JSON files, `<dir>/<hex of the id>/<sequenceNr>-<timestamp>.json`, each holding the
 * serialized state in base64 and its CRC-32. A save writes a temp file, syncs it and renames it into
 * place, so a crash leaves the old snapshot or the new one. The core (AbstractSnapshotStore) owns the
 * rules: validation, criteria, the fallback past a corrupt snapshot, read-only refusals, typed errors.
 */
export class JsonlSnapshotStore<S = unknown> extends AbstractSnapshotStore<S> {
  readonly capabilities: SnapshotStoreCapabilities = {
    persistent: true,
    readOnly: true,
    listIds: true,
    import: true,
    metrics: true,
  };
  private readonly root: string;

  private constructor(options: JsonlSnapshotStoreOptions) {
    super(options);
    this.root = options.path;
  }

  static async open<S = unknown>(options: JsonlSnapshotStoreOptions): Promise<JsonlSnapshotStore<S>> {
    checkOpenOptions('JsonlSnapshotStore', options, JSONL_SNAPSHOT_OPTIONS);
    if (typeof options.path !== 'string' || options.path === '')
      throw new TypeError('JsonlSnapshotStore.open: path is required');
    await checkDirectoryPath(options.path, 'JSON-lines snapshot store');
    if (options.readOnly) {
      await stat(options.path).catch((e: unknown) => {
        throw new StorageError(`no snapshot store at ${options.path}: a read-only open creates nothing`, {
          cause: e,
        });
      });
    } else {
      await mkdir(options.path, { recursive: true });
    }
    return new JsonlSnapshotStore<S>(options);
  }

  /**
   * The `listIds` capability: every id whose directory holds a snapshot (deleting all of an id's
   * snapshots leaves its directory, which then lists nothing). The core's persistenceIds() calls this.
   */
  protected override async *_persistenceIds(): AsyncGenerator<string> {
    for (const name of await readdir(this.root)) {
      const id = await readFile(path.join(this.root, name, ID_FILE), 'utf8').catch(() => undefined);
      if (id !== undefined && (await this._list(id)).length > 0) yield id;
    }
  }

  /** One directory per id, named by its SHA-256 (ids may be long or hold any character); the id is kept in it. */
  private dir(persistenceId: string): string {
    return path.join(this.root, createHash('sha256').update(persistenceId).digest('hex'));
  }

  private file(persistenceId: string, meta: SnapshotMetadata): string {
    return path.join(this.dir(persistenceId), `${meta.sequenceNr}-${meta.timestamp}.json`);
  }

  protected async _save(snapshot: StoredSnapshot): Promise<void> {
    const dir = this.dir(snapshot.persistenceId);
    await mkdir(dir, { recursive: true });
    // Written once, before the id's first snapshot; also after a crash between the mkdir and this write.
    await writeFile(path.join(dir, ID_FILE), snapshot.persistenceId, { flag: 'wx' }).catch(
      (e: NodeJS.ErrnoException) => {
        if (e.code !== 'EEXIST') throw e;
      },
    );
    const payload = Buffer.from(snapshot.payload).toString('base64');
    const body = JSON.stringify({ ser: snapshot.serializerId, payload, crc: crc32(Buffer.from(payload)) });
    const target = this.file(snapshot.persistenceId, snapshot);
    const temp = `${target}.tmp`;
    const handle = await open(temp, 'w');
    try {
      await handle.writeFile(body);
      await handle.datasync();
    } finally {
      await handle.close();
    }
    // Saving twice at one sequenceNr replaces the earlier snapshot.
    for (const old of await this._list(snapshot.persistenceId)) {
      if (old.sequenceNr === snapshot.sequenceNr && old.timestamp !== snapshot.timestamp) {
        await rm(this.file(snapshot.persistenceId, old), { force: true });
      }
    }
    await rename(temp, target);
    const directory = await open(dir, 'r');
    try {
      await directory.sync();
    } finally {
      await directory.close();
    }
  }

  protected async _list(persistenceId: string): Promise<SnapshotMetadata[]> {
    const names = await readdir(this.dir(persistenceId)).catch(() => [] as string[]);
    return names.flatMap((name) => {
      const m = NAME.exec(name);
      return m ? [{ sequenceNr: Number(m[1]), timestamp: Number(m[2]) }] : [];
    });
  }

  protected async _load(persistenceId: string, meta: SnapshotMetadata): Promise<StoredSnapshot> {
    const file = this.file(persistenceId, meta);
    const corrupt = (reason: string) =>
      new SnapshotCorruptedError({ persistenceId, sequenceNr: meta.sequenceNr, file, reason });
    let stored: { ser?: unknown; payload?: unknown; crc?: unknown };
    try {
      stored = JSON.parse(await readFile(file, 'utf8'));
    } catch {
      throw corrupt('not JSON');
    }
    if (typeof stored.payload !== 'string' || typeof stored.ser !== 'number') throw corrupt('fields missing');
    if (crc32(Buffer.from(stored.payload)) !== stored.crc) throw corrupt('CRC mismatch');
    return {
      persistenceId,
      ...meta,
      serializerId: stored.ser,
      payload: Buffer.from(stored.payload, 'base64'),
    };
  }

  protected async _delete(persistenceId: string, snapshots: readonly SnapshotMetadata[]): Promise<void> {
    for (const meta of snapshots) await rm(this.file(persistenceId, meta), { force: true });
  }

  protected async _close(): Promise<void> {}
}
