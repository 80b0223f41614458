import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { move, transferableSymbol, valueSymbol } from 'piscina';

/*
 * The blocking file operations an IoPool thread runs. Each is a plain synchronous function of one
 * structured-cloneable argument: it runs on a worker thread, so blocking there is the point (the event
 * loop and libuv's small shared threadpool stay free). File descriptors are process-wide, so an fd opened
 * by one thread (or the main thread) can be used by any other.
 */

/** Bytes to write: one buffer, or several written in order as if concatenated (writev). */
export type IoData = Uint8Array | readonly Uint8Array[];

export interface WriteFileAtomicArgs {
  /** The file to create or replace. */
  readonly path: string;
  readonly data: IoData;
  /**
   * Default true: fsync the temp file before the rename and the directory after it, so the new content
   * is durable when the call returns. false: a process crash still loses nothing, a power loss may lose
   * the write or leave the old content.
   */
  readonly fsync?: boolean;
  /**
   * Where the temp file is written; must be on the same filesystem as `path`. Default: `path`'s own
   * directory. A store with many directories passes one shared temp directory, so that cleaning up after
   * a crash reads one directory instead of all of them.
   */
  readonly tempDir?: string;
  /**
   * Default false. true: create `path`'s directory (and missing parents) first; with `fsync`, each new
   * directory's entry is made durable too (its parent is fsynced after the file, when the file's own
   * fsyncs have usually committed the mkdir already, which makes that fsync cheap on journaling file
   * systems).
   */
  readonly createDirectory?: boolean;
  /**
   * Default false. true (with `fsync`): also fsync the parent of `path`'s directory, making the
   * directory's own entry durable even when this call did not create it (an earlier process may have
   * died between its mkdir and that fsync).
   */
  readonly syncDirectoryEntry?: boolean;
  /**
   * A RegExp source: after the new file is in place (and durable, with `fsync`), remove the other files
   * in its directory whose names match, e.g. the versions it supersedes. Their removal is not fsynced: a
   * power loss may bring one back beside the new file, so readers must prefer the new one by name.
   */
  readonly supersedes?: string;
}

/** What an operation that only has an effect resolves to. */
// biome-ignore lint/suspicious/noConfusingVoidType: these operations return nothing, like the fs calls they wrap
export type Done = void;

export interface IoOperationMap {
  /**
   * Writes `data` to a temp file (named by `atomicWriteTempName`), fsyncs it, renames it over `path`,
   * fsyncs `path`'s directory: readers see the old content or the new, never a torn file. On failure the
   * temp file is removed and `path` is untouched.
   */
  writeFileAtomic: { args: WriteFileAtomicArgs; result: Done };
  /** Writes all of `data` at `position` (looping over short writes); resolves to the bytes written. */
  pwrite: { args: { readonly fd: number; readonly data: IoData; readonly position: number }; result: number };
  fdatasync: { args: { readonly fd: number }; result: Done };
  fsync: { args: { readonly fd: number }; result: Done };
  /** Makes a directory's entries (created, renamed, deleted files) durable. */
  fsyncDir: { args: { readonly path: string }; result: Done };
  /** Reads up to `length` bytes at `position`; shorter only at the end of the file. */
  read: {
    args: { readonly fd: number; readonly length: number; readonly position: number };
    result: Uint8Array;
  };
  readFile: { args: { readonly path: string }; result: Uint8Array };
  unlink: { args: { readonly path: string }; result: Done };
  rename: { args: { readonly from: string; readonly to: string }; result: Done };
  /** Entry names, sorted (so callers get a stable order); [] when `missingOk` and the directory does not exist. */
  readdir: { args: { readonly path: string; readonly missingOk?: boolean }; result: string[] };
  /**
   * readdir, plus the content of the last entry (in sorted order) whose name matches `pattern` (a RegExp
   * source): one round trip where a listing is usually followed by reading its newest file.
   */
  readdirAndReadLast: {
    args: { readonly path: string; readonly pattern: string; readonly missingOk?: boolean };
    result: { names: string[]; last?: { name: string; data: Uint8Array } };
  };
  ftruncate: { args: { readonly fd: number; readonly length: number }; result: Done };
  /** `flags` as for fs.openSync ('r', 'a+', numeric O_* flags); resolves to the fd. */
  open: {
    args: { readonly path: string; readonly flags: string | number; readonly mode?: number };
    result: number;
  };
  close: { args: { readonly fd: number }; result: Done };
  fstat: { args: { readonly fd: number }; result: { size: number } };
  /**
   * Creates the directory (and missing parents); resolves to the directories created, outermost first,
   * so the caller knows which parents to fsync. [] when it already existed.
   */
  mkdir: { args: { readonly path: string }; result: string[] };
  rmdir: { args: { readonly path: string }; result: Done };
  /**
   * Removes the temp files that `writeFileAtomic` left in `path` when a process died mid-write: those of
   * dead processes, and this process's own unless `keepOwn` (a pid can be reused, so an earlier process
   * with our pid may have left some; only the caller knows whether this process has writes in flight).
   * Resolves to the names removed.
   */
  removeStaleTempFiles: {
    /** `keepOwn`: default false; true keeps this process's temp files (another user in it may be writing). */
    args: { readonly path: string; readonly keepOwn?: boolean };
    result: string[];
  };
}

export type IoOperationName = keyof IoOperationMap;

/** One call for an IoPool: the operation's name and its argument. */
export type IoOperation<K extends IoOperationName = IoOperationName> = {
  [N in K]: {
    readonly op: N;
    readonly args: IoOperationMap[N]['args'];
    /**
     * Default false: buffers in `args` are copied to the worker (only the bytes they view). true: the
     * caller hands them over; a buffer that owns its whole ArrayBuffer is transferred without a copy and
     * is unusable (detached) afterwards.
     */
    readonly transfer?: boolean;
  };
}[K];

/** The implementations, for composing a worker module with more operations (see `ioWorkerModule`). */
export type IoOperations = {
  [K in IoOperationName]: (args: IoOperationMap[K]['args']) => IoOperationMap[K]['result'];
};

const TEMP_NAME = /^\.(\d+)\.[0-9a-f]{16}\.tmp$/;

/**
 * A fresh name for `writeFileAtomic`'s temp file: `.<pid>.<16 hex>.tmp`. Short whatever the target's
 * name (so it fits file-name limits), starts with a dot (never a valid Cairn data file name), and carries
 * the writer's pid so that cleanup can tell a dead writer's leftover from a live writer's file.
 */
export function atomicWriteTempName(): string {
  return `.${process.pid}.${randomBytes(8).toString('hex')}.tmp`;
}

/** The pid of the process that wrote a temp file named by `atomicWriteTempName`, or undefined for other names. */
export function atomicWriteTempPid(name: string): number | undefined {
  const m = TEMP_NAME.exec(name);
  return m ? Number(m[1]) : undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

function parts(data: IoData): readonly Uint8Array[] {
  return data instanceof Uint8Array ? [data] : data;
}

function writeAll(fd: number, data: IoData, position: number): number {
  let buffers = parts(data).filter((b) => b.byteLength > 0);
  let at = position;
  let total = 0;
  while (buffers.length > 0) {
    // writev may write less than asked (a signal, a full disk's last blocks): continue where it stopped.
    let written =
      buffers.length === 1
        ? fs.writeSync(fd, buffers[0] as Uint8Array, 0, (buffers[0] as Uint8Array).byteLength, at)
        : fs.writevSync(fd, buffers as Uint8Array[], at);
    at += written;
    total += written;
    while (written > 0 && buffers.length > 0) {
      const first = buffers[0] as Uint8Array;
      if (written >= first.byteLength) {
        written -= first.byteLength;
        buffers = buffers.slice(1);
      } else {
        buffers = [first.subarray(written), ...buffers.slice(1)];
        written = 0;
      }
    }
  }
  return total;
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function writeFileAtomic(args: WriteFileAtomicArgs): void {
  const {
    path: target,
    data,
    fsync = true,
    tempDir,
    createDirectory = false,
    syncDirectoryEntry = false,
  } = args;
  const dir = path.dirname(target);
  const created = createDirectory ? mkdir({ path: dir }) : [];
  const temp = path.join(tempDir ?? dir, atomicWriteTempName());
  const fd = fs.openSync(temp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o644);
  let renamed = false;
  try {
    try {
      writeAll(fd, data, 0);
      if (fsync) fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(temp, target);
    renamed = true;
  } finally {
    if (!renamed) fs.rmSync(temp, { force: true });
  }
  if (fsync) {
    fsyncDir(dir);
    // Innermost first: each directory's entry, up to the outermost one created (or dir's own entry).
    const entries = new Set(created.map((d) => path.dirname(d)).reverse());
    if (syncDirectoryEntry) entries.add(path.dirname(dir));
    for (const parent of entries) if (parent !== dir) fsyncDir(parent);
  }
  if (args.supersedes !== undefined) {
    const superseded = new RegExp(args.supersedes);
    const name = path.basename(target);
    for (const other of fs.readdirSync(dir)) {
      if (other !== name && superseded.test(other)) fs.rmSync(path.join(dir, other), { force: true });
    }
  }
}

function mkdir({ path: dir }: { readonly path: string }): string[] {
  const created: string[] = [];
  let at = path.resolve(dir);
  while (!fs.existsSync(at)) {
    created.unshift(at);
    const parent = path.dirname(at);
    if (parent === at) break;
    at = parent;
  }
  for (const d of created) {
    try {
      fs.mkdirSync(d);
    } catch (e) {
      // Another thread or process created it meanwhile: it exists, which is what was asked.
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
  return created;
}

function read({ fd, length, position }: { fd: number; length: number; position: number }): Uint8Array {
  const out = new Uint8Array(length);
  let got = 0;
  while (got < length) {
    const n = fs.readSync(fd, out, got, length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got === length ? out : out.slice(0, got);
}

/** The file operations of every IoPool worker. Synchronous: call them on a worker thread only. */
export const ioOperations: IoOperations = {
  writeFileAtomic,
  pwrite: ({ fd, data, position }) => writeAll(fd, data, position),
  fdatasync: ({ fd }) => fs.fdatasyncSync(fd),
  fsync: ({ fd }) => fs.fsyncSync(fd),
  fsyncDir: ({ path: dir }) => fsyncDir(dir),
  read,
  readFile: ({ path: file }) => {
    const bytes = fs.readFileSync(file);
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  },
  unlink: ({ path: file }) => fs.unlinkSync(file),
  rename: ({ from, to }) => fs.renameSync(from, to),
  readdir: ({ path: dir, missingOk = false }) => {
    try {
      return fs.readdirSync(dir).sort();
    } catch (e) {
      if (missingOk && (e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
  },
  readdirAndReadLast: ({ path: dir, pattern, missingOk = false }) => {
    const names = ioOperations.readdir({ path: dir, missingOk });
    const matcher = new RegExp(pattern);
    for (let i = names.length - 1; i >= 0; i--) {
      const name = names[i] as string;
      if (!matcher.test(name)) continue;
      try {
        return { names, last: { name, data: ioOperations.readFile({ path: path.join(dir, name) }) } };
      } catch (e) {
        // Removed between the listing and the read: the listing alone is still an answer.
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { names };
        throw e;
      }
    }
    return { names };
  },
  ftruncate: ({ fd, length }) => fs.ftruncateSync(fd, length),
  open: ({ path: file, flags, mode }) => fs.openSync(file, flags, mode),
  close: ({ fd }) => fs.closeSync(fd),
  fstat: ({ fd }) => ({ size: fs.fstatSync(fd).size }),
  mkdir,
  rmdir: ({ path: dir }) => fs.rmdirSync(dir),
  removeStaleTempFiles: ({ path: dir, keepOwn = false }) => {
    const removed: string[] = [];
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return removed;
      throw e;
    }
    for (const name of names.sort()) {
      const pid = atomicWriteTempPid(name);
      if (pid === undefined || (pid === process.pid ? keepOwn : isAlive(pid))) continue;
      fs.rmSync(path.join(dir, name), { force: true });
      removed.push(name);
    }
    return removed;
  },
};

/** How a worker reports a failed operation: errors lose `code`, `errno`, `syscall` and `path` when cloned. */
export interface IoFailure {
  readonly cairnIoFailure: true;
  readonly name: string;
  readonly message: string;
  readonly stack: string | undefined;
  readonly code: string | undefined;
  readonly errno: number | undefined;
  readonly syscall: string | undefined;
  readonly path: string | undefined;
  readonly dest: string | undefined;
}

export function isIoFailure(value: unknown): value is IoFailure {
  return typeof value === 'object' && value !== null && (value as IoFailure).cairnIoFailure === true;
}

function toFailure(e: unknown): IoFailure {
  const err = (e instanceof Error ? e : new Error(String(e))) as NodeJS.ErrnoException & { dest?: string };
  return {
    cairnIoFailure: true,
    name: err.name,
    message: err.message,
    stack: err.stack,
    code: err.code,
    errno: err.errno,
    syscall: err.syscall,
    path: err.path,
    dest: err.dest,
  };
}

// biome-ignore lint/suspicious/noExplicitAny: each operation declares its own argument type
type AnyOperation = (args: any) => unknown;

/**
 * Turns a record of operations into the exports of an IoPool worker module: each handler returns its
 * result (a Uint8Array result is transferred back, not copied) or an IoFailure that IoPool turns back
 * into an Error with its `code`. A worker with more operations is one line:
 * `export = ioWorkerModule({ ...ioOperations, appendRecord })`.
 */
export function ioWorkerModule<T extends Record<string, AnyOperation>>(
  operations: T,
): Record<keyof T, (args: unknown) => Promise<unknown>> {
  const handlers = {} as Record<keyof T, (args: unknown) => Promise<unknown>>;
  for (const [name, operation] of Object.entries(operations)) {
    handlers[name as keyof T] = async (args: unknown) => {
      try {
        const result = await operation(args);
        if (result instanceof Uint8Array && ownsWholeBuffer(result)) return move(result);
        return withTransfers(result);
      } catch (e) {
        return toFailure(e);
      }
    };
  }
  // piscina preloads each thread's handler under the name "default"; without one it falls back to an
  // ESM import of the module, an asynchronous file read that a thread stopped mid-start leaks the fd of.
  // Tasks always name their operation, so this one only answers a misdirected task.
  (handlers as Record<string, (args: unknown) => Promise<unknown>>).default = async () =>
    toFailure(new TypeError('an IoPool task must name its operation'));
  return handlers;
}

/**
 * A plain-object result whose Uint8Array fields own their buffers, wrapped so piscina hands those buffers
 * over instead of copying them (a read's bytes); anything else as it is.
 */
function withTransfers(result: unknown): unknown {
  if (result === null || typeof result !== 'object' || Object.getPrototypeOf(result) !== Object.prototype) {
    return result;
  }
  const buffers = Object.values(result)
    .filter((v): v is Uint8Array => v instanceof Uint8Array && ownsWholeBuffer(v))
    .map((v) => v.buffer);
  if (buffers.length === 0) return result;
  return move({ [transferableSymbol]: buffers, [valueSymbol]: result } as unknown as ArrayBuffer);
}

/** True when the view covers its entire, non-shared ArrayBuffer: transferring it gives away nothing else. */
export function ownsWholeBuffer(view: Uint8Array): boolean {
  return (
    view.byteOffset === 0 &&
    view.byteLength === view.buffer.byteLength &&
    !(typeof SharedArrayBuffer !== 'undefined' && view.buffer instanceof SharedArrayBuffer)
  );
}
