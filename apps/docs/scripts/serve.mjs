// Serves the built site (site/.vitepress/dist) on 127.0.0.1 with VitePress's clean URLs and
// prints its URL. `pnpm start` builds first. PORT=0 picks a free port.
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.wasm': 'application/wasm',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

/** Starts the server; resolves with { url, close }. */
export function serveSite({ root, port = 4173, host = '127.0.0.1' } = {}) {
  const dir = resolve(
    root ?? join(fileURLToPath(new URL('.', import.meta.url)), '..', 'site', '.vitepress', 'dist'),
  );
  if (!existsSync(join(dir, 'index.html'))) {
    throw new Error(`serveSite: no built site in ${dir} (run the docs build first)`);
  }
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const rel = normalize(path).replace(/^([/\\])+/, '');
    const candidates = [rel, `${rel}.html`, join(rel, 'index.html')];
    const file = candidates
      .map((c) => join(dir, c))
      .find((f) => f.startsWith(dir) && existsSync(f) && statSync(f).isFile());
    if (!file) {
      res.writeHead(404, { 'content-type': 'text/html; charset=utf-8' });
      createReadStream(join(dir, '404.html')).pipe(res);
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' });
    createReadStream(file).pipe(res);
  });
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => {
      const { port: p } = server.address();
      ok({ url: `http://${host}:${p}/`, close: () => new Promise((r) => server.close(r)) });
    });
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { url, close } = await serveSite({ port: Number(process.env.PORT ?? 4173) });
  console.log(`kernel-attention docs: ${url}  (Ctrl-C stops)`);
  // --exit-with PID…: stop when any of these processes is gone (npm start passes npm's PID and
  // its shell's: npm does not pass a signal on through the shell it runs scripts in)
  const watch = process.argv
    .slice(process.argv.indexOf('--exit-with') + 1)
    .map(Number)
    .filter((pid) => process.argv.includes('--exit-with') && Number.isInteger(pid) && pid > 1);
  if (watch.length > 0) {
    setInterval(() => {
      for (const pid of watch) {
        try {
          process.kill(pid, 0);
        } catch {
          console.log(`kernel-attention docs: process ${pid} ended, stopping the server`);
          close();
          process.exit(0);
        }
      }
    }, 500);
  }
}
