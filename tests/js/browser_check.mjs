#!/usr/bin/env node
// Serves browser/page.html from its own origin (a second 127.0.0.1 port), opens it in Debian's
// headless Chromium through playwright-core, and prints one JSON line with the page's result.
// Usage: node browser_check.mjs --server URL --stores indexeddb,s3 [--screenshot FILE]
import http from 'node:http';
import {readFile} from 'node:fs/promises';
import {mkdtempSync} from 'node:fs';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {parseArgs} from 'node:util';
import {chromium} from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const FILES = {
  '/': [path.join(here, 'browser/page.html'), 'text/html'],
  '/scenario.js': [path.join(here, 'browser/scenario.js'), 'text/javascript'],
  '/tf.min.js': [path.join(here, 'node_modules/@tensorflow/tfjs/dist/tf.min.js'), 'text/javascript'],
};
const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

function servePage() {
  const server = http.createServer(async (request, response) => {
    const entry = FILES[new URL(request.url, 'http://x').pathname];
    if (!entry) { response.writeHead(404).end(); return; }
    response.writeHead(200, {'Content-Type': entry[1]}).end(await readFile(entry[0]));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

async function main() {
  const {values} = parseArgs({options: {server: {type: 'string'}, stores: {type: 'string'},
    screenshot: {type: 'string'}, chromium: {type: 'string', default: '/usr/bin/chromium'},
    timeout: {type: 'string', default: '120000'}}});
  const pageServer = await servePage();
  const origin = `http://127.0.0.1:${pageServer.address().port}`;
  // A fresh profile folder each run: no cache or state carries over between checks.
  const profile = mkdtempSync(path.join(tmpdir(), 'modelshelf-chromium-'));
  const browser = await chromium.launchPersistentContext(profile, {executablePath: values.chromium,
    args: CHROMIUM_FLAGS});
  let result;
  const page = await browser.newPage();
  const consoleLines = [];
  page.on('console', (message) => consoleLines.push(`${message.type()}: ${message.text()}`));
  try {
    const query = new URLSearchParams({server: values.server, stores: values.stores});
    await page.goto(`${origin}/?${query}`);
    result = await page.evaluate(() => window.__result, undefined, {timeout: Number(values.timeout)});
  } catch (error) {
    result = {ok: false, error: String(error)};
  }
  result.console = consoleLines.slice(-20);
  if (!result.ok && values.screenshot) {
    await page.screenshot({path: values.screenshot, fullPage: true}).catch(() => {});
    result.screenshot = values.screenshot;
  }
  await browser.close();
  pageServer.close();
  console.log(JSON.stringify(result));
  process.exit(result.ok ? 0 : 1);
}

main().catch((error) => { console.log(JSON.stringify({ok: false, error: String(error)})); process.exit(1); });
