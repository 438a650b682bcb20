#!/usr/bin/env node
// A tiny static server for the example SPA: no build step, no dependencies beyond node.
//
//   node examples/spa/serve.mjs            # http://127.0.0.1:5173
//   SPA_PORT=0 node examples/spa/serve.mjs # a free port (printed)
//
// Serves index.html (also for /callback, where the identity provider sends the browser
// back), app.js, style.css, config.js, and the browser bundle of oidc-client-ts from
// node_modules at /vendor/oidc-client-ts.min.js. oidc-client-ts is looked up in this folder's
// node_modules (`npm ci` here), then in tests/e2e/node_modules (the test suite's copy), or
// in OIDC_CLIENT_TS_DIR.
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const host = process.env.SPA_HOST || '127.0.0.1';
const port = Number(process.env.SPA_PORT ?? 5173);

const bundleCandidates = [
  process.env.OIDC_CLIENT_TS_DIR,
  join(here, 'node_modules', 'oidc-client-ts'),
  join(here, '..', '..', 'tests', 'e2e', 'node_modules', 'oidc-client-ts'),
]
  .filter(Boolean)
  .map((dir) => join(dir, 'dist', 'browser', 'oidc-client-ts.min.js'));
const bundle = bundleCandidates.find((p) => existsSync(p));
if (!bundle) {
  console.error(
    `[spa] oidc-client-ts is not installed: run \`npm ci\` in ${here} (looked for ${bundleCandidates.join(', ')})`,
  );
  process.exit(1);
}

const files = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/index.html': ['index.html', 'text/html; charset=utf-8'],
  '/callback': ['index.html', 'text/html; charset=utf-8'],
  '/app.js': ['app.js', 'text/javascript; charset=utf-8'],
  '/config.js': ['config.js', 'text/javascript; charset=utf-8'],
  '/style.css': ['style.css', 'text/css; charset=utf-8'],
};

// What the page may load and talk to: itself, and (for fetch) the identity provider and the
// API, whose origins are only known at run time; so connect-src allows http(s) in general.
const csp = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  'connect-src http: https:',
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');

const server = createServer(async (req, res) => {
  const path = new URL(req.url, 'http://x').pathname;
  try {
    let file;
    let type;
    if (path === '/vendor/oidc-client-ts.min.js') {
      file = bundle;
      type = 'text/javascript; charset=utf-8';
    } else if (files[path]) {
      [file, type] = files[path];
      file = join(here, file);
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    const body = await readFile(file);
    res.writeHead(200, {
      'content-type': type,
      'cache-control': 'no-store',
      'content-security-policy': csp,
      'referrer-policy': 'no-referrer',
      'x-content-type-options': 'nosniff',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  } catch (e) {
    res.writeHead(500, { 'content-type': 'text/plain' }).end(String(e));
  }
});

server.listen(port, host, () => {
  const { address, port: bound } = server.address();
  // The test harness reads this line to learn the port when SPA_PORT=0.
  console.log(`[spa] listening on http://${address}:${bound}`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
