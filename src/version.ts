/** ctbridge's version: package.json is its one source (see src/assets.ts for where that file is read from). */
import { readAsset } from './assets.js';

export const VERSION: string = (JSON.parse(readAsset('package.json').toString('utf8')) as { version: string }).version;
