/**
 * Tests of the benchmark harness itself (the raw-fs peer, the table's ratios), kept out of `npm test`
 * like the rest of bench/. Run from the repo root: `npx jest -c bench/jest.config.js`.
 */
const root = require('../jest.config.js');

/** @type {import('jest').Config} */
module.exports = { ...root, rootDir: '..', roots: ['<rootDir>/bench/test'] };
