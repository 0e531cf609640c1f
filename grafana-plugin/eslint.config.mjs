import { defineConfig } from 'eslint/config';
import baseConfig from './.config/eslint.config.mjs';

export default defineConfig([
  {
    // Only the frontend is linted here; pkg/ and provisioning/ belong to the Go side.
    ignores: ['**/node_modules/', '**/dist/', '**/coverage/', 'pkg/', 'provisioning/', '**/.eslintcache'],
  },
  ...baseConfig,
]);
