import { readFileSync } from 'node:fs';

/** agentpm's own version, from its package.json (read once; dist/ sits next to it). */
export const VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
