import { readFileSync } from 'node:fs';
import { PACKAGE_JSON } from './package-files.js';

/** agentpm's own version, from its package.json (read once). */
export const VERSION: string = (JSON.parse(readFileSync(PACKAGE_JSON, 'utf8')) as { version: string }).version;
