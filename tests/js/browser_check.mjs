#!/usr/bin/env node
// Serves browser/page.html from its own origin (a second 127.0.0.1 port), opens it in Debian's
// headless Chromium through playwright-core, and prints one JSON line with the page's result.
// Usage: node browser_check.mjs --server URL --stores indexeddb,s3 [--screenshot FILE]
//        [--page /auth] [--port N] [--param NAME=VALUE]...
// --page picks the page (/ runs browser/scenario.js, /auth browser/auth_scenario.js); --port
// fixes the page's origin (so a server can list it in its CORS origins); every --param is
// added to the page's query string. The result also lists the CORS preflights Chromium sent
// (`preflights`: url, status and request headers of each, as the DevTools protocol saw them).
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
  '/common.js': [path.join(here, 'browser/common.js'), 'text/javascript'],
  '/scenario.js': [path.join(here, 'browser/scenario.js'), 'text/javascript'],
  '/auth': [path.join(here, 'browser/auth.html'), 'text/html'],
  '/auth_scenario.js': [path.join(here, 'browser/auth_scenario.js'), 'text/javascript'],
  '/tf.min.js': [path.join(here, 'node_modules/@tensorflow/tfjs/dist/tf.min.js'), 'text/javascript'],
};
const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

function servePage(port) {
  const server = http.createServer(async (request, response) => {
    const entry = FILES[new URL(request.url, 'http://x').pathname];
    if (!entry) { response.writeHead(404).end(); return; }
    response.writeHead(200, {'Content-Type': entry[1]}).end(await readFile(entry[0]));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

/** The page's query: --server, --stores and every --param NAME=VALUE. */
function pageQuery(values) {
  const query = new URLSearchParams({server: values.server});
  if (values.stores) query.set('stores', values.stores);
  for (const param of values.param ?? []) {
    const equals = param.indexOf('=');
    if (equals <= 0) throw new Error(`bad --param '${param}', expected NAME=VALUE`);
    query.set(param.slice(0, equals), param.slice(equals + 1));
  }
  return query;
}

/** Chromium sends CORS preflights itself; pages never see them, the DevTools protocol does. */
async function recordPreflights(browser, page) {
  const session = await browser.newCDPSession(page);
  const preflights = new Map();
  // Chromium reports a preflight as a request (OPTIONS) whose initiator is 'preflight'.
  session.on('Network.requestWillBeSent', ({requestId, initiator, request}) => {
    if (initiator?.type !== 'preflight') return;
    preflights.set(requestId, {url: request.url, method: request.method, headers: request.headers});
  });
  session.on('Network.responseReceived', ({requestId, response}) => {
    const preflight = preflights.get(requestId);
    if (preflight) preflight.status = response.status;
  });
  await session.send('Network.enable');
  return preflights;
}

async function main() {
  const {values} = parseArgs({options: {server: {type: 'string'}, stores: {type: 'string'},
    screenshot: {type: 'string'}, chromium: {type: 'string', default: '/usr/bin/chromium'},
    timeout: {type: 'string', default: '120000'}, page: {type: 'string', default: '/'},
    port: {type: 'string', default: '0'}, param: {type: 'string', multiple: true}}});
  const query = pageQuery(values);
  const pageServer = await servePage(Number(values.port));
  const origin = `http://127.0.0.1:${pageServer.address().port}`;
  // A fresh profile folder each run: no cache or state carries over between checks.
  const profile = mkdtempSync(path.join(tmpdir(), 'modelshelf-chromium-'));
  const browser = await chromium.launchPersistentContext(profile, {executablePath: values.chromium,
    args: CHROMIUM_FLAGS});
  let result;
  const page = await browser.newPage();
  const consoleLines = [];
  page.on('console', (message) => consoleLines.push(`${message.type()}: ${message.text()}`));
  const preflights = await recordPreflights(browser, page);
  try {
    await page.goto(`${origin}${values.page}?${query}`);
    result = await page.evaluate(() => window.__result, undefined, {timeout: Number(values.timeout)});
  } catch (error) {
    result = {ok: false, error: String(error)};
  }
  result.console = consoleLines.slice(-20);
  result.preflights = [...preflights.values()];
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
