// Writes the JSON Schema of every published event into schemas/ (npm run schemas). The files are
// generated from lib/core/schemas; test/unit/event-schemas.test.ts fails when they fall behind.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { jsonSchemaOf, PUBLISHED_SCHEMAS } from '../../lib/core/schemas/index.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const dir = `${root}schemas/`;
mkdirSync(dir, { recursive: true });
const wanted = new Set(PUBLISHED_SCHEMAS.map((published) => `${published.name}.json`));
for (const file of readdirSync(dir)) if (file.endsWith('.json') && !wanted.has(file)) rmSync(`${dir}${file}`);
for (const published of PUBLISHED_SCHEMAS) {
  writeFileSync(`${dir}${published.name}.json`, `${JSON.stringify(jsonSchemaOf(published), null, 2)}\n`);
}
// Laid out as the rest of the repository, so `npm run check` stays green.
const biome = spawnSync(`${root}node_modules/.bin/biome`, ['format', '--write', dir], { stdio: 'inherit' });
if (biome.status !== 0) process.exit(biome.status ?? 1);
console.log(`wrote ${wanted.size} schemas into schemas/`);
