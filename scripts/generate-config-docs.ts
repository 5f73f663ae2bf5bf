// Writes docs/configuration.md from the config schema.
import { writeFileSync } from 'node:fs';
import { renderConfigurationReference } from '../src/config-reference.js';

writeFileSync(new URL('../docs/configuration.md', import.meta.url), renderConfigurationReference());
console.log('docs/configuration.md written');
