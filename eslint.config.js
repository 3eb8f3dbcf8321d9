// Lint for the supervisor and the kiosk's station agent. The part that matters
// most is the layering of their src/ (see docs/architecture.md): imports point
// one way only.
import tseslint from 'typescript-eslint';

const LAYERS = ['domain', 'render', 'ports', 'config', 'app', 'api', 'adapters', 'cli', 'bench'];

/** What each folder may import from the others (always itself). */
const ALLOWED = {
  domain: [],
  render: ['domain'],
  ports: ['domain'],
  config: ['domain'],
  app: ['domain', 'render', 'ports', 'config'],
  api: ['domain', 'app', 'ports'],
  adapters: ['domain', 'render', 'ports'],
  cli: ['domain', 'render', 'config', 'api', 'adapters'],
  bench: ['domain', 'api', 'adapters', 'cli'],
};

/** Packages that do I/O, or talk to the bus, stay at the edges. */
const IO_PACKAGES = ['node:*', 'dbus-next', 'sd-notify'];
const IO_ALLOWED = new Set(['adapters', 'cli', 'bench']);

function layerRules(layer, root = 'supervisor/src', allowed = ALLOWED) {
  const forbidden = LAYERS.filter((l) => l !== layer && !allowed[layer].includes(l));
  const patterns = [
    { group: forbidden.map((l) => `**/${l}/**`), message: `${layer}/ may import only from: ${[layer, ...allowed[layer]].join(', ')}.` },
    { group: ['**/main.js', '**/wiring/**'], message: 'Only the entry point (main.ts and wiring/) wires the program together.' },
  ];
  if (!IO_ALLOWED.has(layer)) {
    patterns.push({ group: IO_PACKAGES, message: `${layer}/ does no I/O of its own: go through a port (adapters/ implement them).` });
  }
  return {
    files: [`${root}/${layer}/**/*.ts`],
    rules: { 'no-restricted-imports': ['error', { patterns }] },
  };
}

export default tseslint.config(
  { ignores: ['**/dist/**', 'node_modules/**', 'build/**', '.tap/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
    },
  },
  ...LAYERS.map((l) => layerRules(l)),
  // The kiosk's station agent keeps the same layers (it has no api/ nor bench/);
  // its cli (the firewall tool) reads the station's settings itself.
  ...['domain', 'render', 'ports', 'config', 'app', 'adapters', 'cli'].map((l) =>
    layerRules(l, 'kiosk-overlay/agent/src', { ...ALLOWED, cli: ['domain', 'render', 'config', 'adapters'] }),
  ),
  {
    // api/dbus is the one part of api/ that speaks D-Bus.
    files: ['supervisor/src/api/dbus/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['**/adapters/**', '**/render/**', '**/config/**', '**/cli/**', '**/bench/**'], message: 'api/ may import only from: api, domain, app, ports.' },
            { group: ['node:*', 'sd-notify'], message: 'api/ does no I/O of its own.' },
          ],
        },
      ],
    },
  },
);
