/**
 * One jest run over every package and the cross-package tests.
 * Sources are compiled by @swc/jest (fast, no type-check: `npm run typecheck` does that);
 * `@cairn/*` imports resolve to the sources so tests never run stale builds. Piscina workers and
 * crash-test children run the built dist/ files, which `npm test` builds first.
 */
const swc = [
  '@swc/jest',
  {
    jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
    module: { type: 'commonjs' },
  },
];

/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': swc },
  moduleNameMapper: { '^@cairn/([a-z-]+)$': '<rootDir>/packages/$1/src/index.ts' },
  roots: ['<rootDir>/packages', '<rootDir>/test', '<rootDir>/examples'],
  testMatch: ['**/*.test.ts'],
  // test/pack.test.ts packs and installs every package: minutes, so `npm run test:pack` runs it apart.
  testPathIgnorePatterns: ['/node_modules/', '/dist/', '<rootDir>/test/pack\\.test\\.ts$'],
  modulePathIgnorePatterns: ['<rootDir>/.*/dist/'],
  testTimeout: 30000,
  // Fails fast, naming the files, when the build the worker threads and child processes run is missing,
  // and starts the PostgreSQL server the postgres tests use (unless CAIRN_TEST_PG_URL names one).
  globalSetup: '<rootDir>/test/global-setup.js',
  globalTeardown: '<rootDir>/test/global-teardown.js',
  // A test that damages data captures the corruption report instead of printing it.
  setupFilesAfterEnv: ['<rootDir>/test/no-corruption-warnings.js'],
};
