#!/usr/bin/env node
// Committed rather than built, so npm links `cairn` at install time, before dist/ exists.
const { existsSync } = require('node:fs');
const path = require('node:path');

const built = path.join(__dirname, '..', 'dist', 'cli.js');
if (!existsSync(built)) {
  process.stderr.write(
    `cairn: ${built} is missing: build first (in the Cairn repository: npm run build; npm start and npm test build too)\n`,
  );
  process.exit(1);
}
require(built);
