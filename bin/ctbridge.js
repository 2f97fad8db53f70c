#!/usr/bin/env node
// Runs the compiled CLI. From a checkout, `npm run build` makes dist/ (npm
// start and npm test build it first); an installed package ships it.
try {
  await import('../dist/cli/main.js');
} catch (err) {
  if (err?.code === 'ERR_MODULE_NOT_FOUND' && /dist[\\/]cli[\\/]main\.js/.test(String(err.message))) {
    process.stderr.write('ctbridge: dist/ is missing: run `npm run build` in this checkout first\n');
    process.exit(1);
  }
  throw err;
}
