#!/usr/bin/env node
// Rewrites the README's configuration table from src/config/options.ts (via dist/). Run: npm run docs:options
import { readFileSync, writeFileSync } from 'node:fs';
import { withOptionsTable } from '../dist/config/help.js';

const path = new URL('../README.md', import.meta.url);
const before = readFileSync(path, 'utf8');
const after = withOptionsTable(before);
if (after !== before) writeFileSync(path, after);
process.stdout.write(after === before ? 'README configuration table already up to date\n' : 'README configuration table rewritten\n');
