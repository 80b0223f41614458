/** jest globalTeardown: stops the throwaway PostgreSQL server global-setup.js started, if it started one. */
module.exports = async () => {
  const server = globalThis.__cairnPostgres;
  globalThis.__cairnPostgres = undefined;
  await server?.stop();
};
