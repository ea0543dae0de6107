// Writes the dashboard's JSON: `node dist/build.js [path]`, by default to
// ../dashboards/rsky-pipeline.json (what Grafana's provisioning reads).

import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

import { build } from './rsky-pipeline';

const out = process.argv[2] ?? resolve(__dirname, '../../dashboards/rsky-pipeline.json');
writeFileSync(out, JSON.stringify(build(), null, 2) + '\n');
