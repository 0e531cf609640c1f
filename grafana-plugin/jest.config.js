// force timezone to UTC to allow tests to work regardless of local timezone
// generally used by snapshots, but can affect specific tests
process.env.TZ = 'UTC';

const base = require('./.config/jest.config');

// Grafana 13 packages reach ESM-only .mjs builds (d3-color, d3-interpolate); the scaffold's
// transform covers .js/.ts only, so let swc transform .mjs too.
const swc = Object.values(base.transform)[0];

module.exports = {
  ...base,
  transform: {
    ...base.transform,
    '^.+\\.mjs$': swc,
  },
};
