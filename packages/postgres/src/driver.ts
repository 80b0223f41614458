import { createHash } from 'node:crypto';
import { StorageError } from '@cairn/actor-core';
import pg from 'pg';
import { maskSecrets } from './mask';

/**
 * The one place Cairn talks to a PostgreSQL driver (node-postgres). Everything above it speaks
 * `SqlDatabase`: a second driver would implement this interface and nothing else.
 */
export interface SqlSession {
  /** Runs one statement; resolves to its rows. */
  query<R = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<R[]>;
}

export interface SqlDatabase extends SqlSession {
  /**
   * Runs one statement as a prepared statement of the connection it lands on: the server parses and
   * plans it once per connection (then, from the sixth run, usually keeps a generic plan), instead of
   * on every run. For the statements run over and over (commits, pages of reads).
   */
  prepared<R = Record<string, unknown>>(text: string, params: readonly unknown[]): Promise<R[]>;
  /** Runs `body` in one transaction on one connection: COMMIT when it resolves, ROLLBACK when it throws. */
  transaction<T>(body: (tx: SqlSession) => Promise<T>): Promise<T>;
  /** Runs `body` on one connection of its own (no transaction), released afterwards. */
  session<T>(body: (session: SqlSession) => Promise<T>): Promise<T>;
  /**
   * Opens a connection of its own, outside the pool, that LISTENs on `channel`: `onNotify` gets each
   * notification's payload, `onLost` is called once if the connection breaks (the listener is then dead;
   * close() it and listen again).
   */
  listen(channel: string, onNotify: (payload: string) => void, onLost: (e: Error) => void): Promise<Listener>;
  /**
   * A connection of its own, outside the pool, kept until close() (for session state such as advisory
   * locks, which the server releases when the connection ends).
   */
  dedicated(applicationName: string): Promise<Dedicated>;
  /** Where it connects, password masked: for messages. */
  readonly target: string;
  close(): Promise<void>;
}

/** A connection outside the pool. */
export interface Dedicated extends SqlSession {
  /** Ends the connection (idempotent). */
  close(): Promise<void>;
}

/** A LISTENing connection. */
export interface Listener {
  /** Ends the connection (idempotent). */
  close(): Promise<void>;
}

export interface SqlDatabaseOptions {
  /** `postgres://user:password@host:port/database`; omitted: node-postgres's PG* environment variables. */
  readonly connectionString?: string;
  readonly poolSize: number;
  /** Server-side statement_timeout for every connection, in ms; 0 = none. */
  readonly statementTimeoutMs: number;
  readonly applicationName: string;
  /**
   * Every connection's transactions are read-only (`default_transaction_read_only`): the server refuses
   * any write, a second guard behind the stores' own refusal.
   */
  readonly readOnly?: boolean;
}

const READ_ONLY_SESSION = 'SET default_transaction_read_only = on';

/** SQLSTATE classes after which a write's outcome is unknown: the connection or the server went away. */
function outcomeUnknown(e: unknown): boolean {
  const code = (e as { code?: unknown })?.code;
  if (typeof code !== 'string' || code.length !== 5) return true; // a socket error, not a server reply
  return code.startsWith('08') || code.startsWith('57') || code === 'XX000';
}

/** True for failures after which the statement rolled back and running it again is the fix. */
export function isRetryable(e: unknown): boolean {
  const code = (e as { code?: unknown })?.code;
  return code === '40P01' || code === '40001';
}

/** The SQLSTATE of a server error, if it is one. */
export function sqlState(e: unknown): string | undefined {
  const code = (e as { code?: unknown })?.code;
  return typeof code === 'string' && code.length === 5 ? code : undefined;
}

/**
 * Turns a driver error into a StorageError whose message carries no secret. For a write (`writing`), an
 * error after which the outcome is unknown says so: the caller must read back what really committed.
 */
export function storageError(e: unknown, what: string, target: string, writing: boolean): StorageError {
  const detail = maskSecrets((e as Error)?.message ?? String(e));
  const state = sqlState(e);
  const suffix = state ? ` (SQLSTATE ${state})` : '';
  if (writing && outcomeUnknown(e)) {
    return new StorageError(
      `${what} on ${target}: outcome unknown, the connection failed before the server confirmed: ${detail}${suffix}; read back what committed`,
      { cause: e },
    );
  }
  return new StorageError(`${what} on ${target} failed: ${detail}${suffix}`, { cause: e });
}

/** Parses int8 (bigint) columns as numbers: sequence numbers and timestamps stay below 2^53. */
const types = {
  getTypeParser: (oid: number, format?: 'text' | 'binary') => {
    if (oid === 20 && format !== 'binary') return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format as 'text');
  },
};

/** Opens a node-postgres pool. Connections are made on first use. */
export function openPgDatabase(options: SqlDatabaseOptions): SqlDatabase {
  const config: pg.PoolConfig = {
    max: options.poolSize,
    application_name: options.applicationName,
    types,
    ...(options.statementTimeoutMs > 0 ? { statement_timeout: options.statementTimeoutMs } : {}),
    // Awaited by the pool before it hands a new connection out (its failure fails that checkout).
    ...(options.readOnly ? { onConnect: (client: pg.ClientBase) => client.query(READ_ONLY_SESSION) } : {}),
  };
  if (options.connectionString !== undefined) config.connectionString = options.connectionString;
  const pool = new pg.Pool(config);
  // An idle connection that dies (a server restart) is dropped by the pool; it must not crash the process.
  pool.on('error', () => undefined);
  const target = describeTarget(options.connectionString);
  const query = async <R>(
    client: pg.Pool | pg.PoolClient | pg.Client,
    text: string,
    params?: readonly unknown[],
  ) => (await client.query(text, params as unknown[])).rows as R[];
  const names = new Map<string, string>();
  return {
    target,
    query: (text, params) => query(pool, text, params),
    prepared: async <R>(text: string, params: readonly unknown[]) => {
      let name = names.get(text);
      if (name === undefined) {
        // Named after the text: the same text is the same statement on every connection of the pool.
        name = `cairn_${createHash('sha1').update(text).digest('hex').slice(0, 24)}`;
        names.set(text, name);
      }
      return (await pool.query({ name, text, values: params as unknown[] })).rows as R[];
    },
    session: async (body) => {
      const client = await pool.connect();
      let broken: Error | undefined;
      try {
        return await body({ query: (text, params) => query(client, text, params) });
      } catch (e) {
        if (sqlState(e) === undefined) broken = e as Error;
        throw e;
      } finally {
        client.release(broken);
      }
    },
    transaction: async (body) => {
      const client = await pool.connect();
      let broken: Error | undefined;
      try {
        await client.query('BEGIN');
        const session: SqlSession = { query: (text, params) => query(client, text, params) };
        let result: Awaited<ReturnType<typeof body>>;
        try {
          result = await body(session);
        } catch (e) {
          await client.query('ROLLBACK').catch((rollbackError: Error) => {
            broken = rollbackError;
          });
          throw e;
        }
        await client.query('COMMIT');
        return result;
      } catch (e) {
        if (sqlState(e) === undefined) broken ??= e as Error;
        throw e;
      } finally {
        client.release(broken);
      }
    },
    listen: async (channel, onNotify, onLost) => {
      const client = new pg.Client({
        application_name: `${options.applicationName} listener`,
        types,
        ...(options.connectionString !== undefined ? { connectionString: options.connectionString } : {}),
      });
      let lost = false;
      const lose = (e: Error) => {
        if (lost) return;
        lost = true;
        onLost(e);
      };
      client.on('error', lose);
      client.on('end', () => lose(new Error('the listening connection ended')));
      client.on('notification', (message) => {
        if (message.channel === channel) onNotify(message.payload ?? '');
      });
      let ended: Promise<void> | undefined;
      const close = () => {
        lost = true;
        ended ??= client.end().catch(() => undefined);
        return ended;
      };
      try {
        await client.connect();
        if (options.readOnly) await client.query(READ_ONLY_SESSION);
        await client.query(`LISTEN "${channel.replace(/"/g, '""')}"`);
      } catch (e) {
        await close();
        throw e;
      }
      return { close };
    },
    dedicated: async (applicationName) => {
      const client = new pg.Client({
        application_name: applicationName,
        types,
        ...(options.connectionString !== undefined ? { connectionString: options.connectionString } : {}),
      });
      // A dropped connection must not crash the process; its next query fails instead.
      client.on('error', () => undefined);
      let ended: Promise<void> | undefined;
      const close = () => {
        ended ??= client.end().catch(() => undefined);
        return ended;
      };
      try {
        await client.connect();
        if (options.readOnly) await client.query(READ_ONLY_SESSION);
      } catch (e) {
        await close();
        throw e;
      }
      return { query: (text, params) => query(client, text, params), close };
    },
    close: () => pool.end(),
  };
}

/** `user@host:port/database` of a connection string (or of the PG* variables), without the password. */
export function describeTarget(connectionString: string | undefined): string {
  if (connectionString !== undefined) {
    try {
      const url = new URL(connectionString);
      const user = decodeURIComponent(url.username) || 'default user';
      return `postgres://${user}@${url.host}${url.pathname}`;
    } catch {
      return maskSecrets(connectionString);
    }
  }
  const env = process.env;
  return `postgres://${env.PGUSER ?? 'default user'}@${env.PGHOST ?? 'localhost'}:${env.PGPORT ?? 5432}/${env.PGDATABASE ?? ''} (PG* variables)`;
}
