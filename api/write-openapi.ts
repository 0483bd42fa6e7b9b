/** `npm run openapi`: writes docs/openapi.json from the schemas (test/unit/openapi.test.ts fails while it is stale). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openApiText } from './openapi';

const OPENAPI_FILE = path.resolve(__dirname, '../docs/openapi.json');

fs.writeFileSync(OPENAPI_FILE, openApiText());
console.log(`wrote ${path.relative(process.cwd(), OPENAPI_FILE)}`);
