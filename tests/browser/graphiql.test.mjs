// GraphiQL in a real browser: Debian's Chromium driven by puppeteer-core, against the real
// gateway binary in demo mode (started here on 127.0.0.1 port 0). Every request to another
// origin is made to fail and recorded, as on an air-gapped network. A screenshot of each
// state is written to target/browser/ for a person to look at.
//
//   bash tests/browser/run.sh          (builds the binary, installs puppeteer-core, runs this)
//
// Environment: GATEWAY_BIN (default target/debug/coder-audit-gateway), CHROMIUM (default
// /usr/bin/chromium).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import puppeteer from 'puppeteer-core';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const binary = process.env.GATEWAY_BIN ?? join(root, 'target', 'debug', 'coder-audit-gateway');
const chromium = process.env.CHROMIUM ?? '/usr/bin/chromium';
const shots = join(root, 'target', 'browser');
const DEMO_TOKEN_PREFIX = 'demoowner0-';
const TIMEOUT = 30_000;
// The headers editor: the visible one of the two editor tools (variables and headers).
const HEADERS_EDITOR = '.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror';

/** Starts the gateway with `args`; resolves to its base URL and the process. */
function startGateway(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, ['--listen', '127.0.0.1:0', ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, RUST_LOG: undefined },
    });
    let log = '';
    const timer = setTimeout(() => reject(new Error(`the gateway did not start:\n${log}`)), TIMEOUT);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      log += chunk;
      const found = log.match(/serving GraphQL on (http:\/\/[^/\s]+)\/graphql/);
      if (found) {
        clearTimeout(timer);
        resolve({ base: found[1], child });
      }
    });
    child.on('exit', (code) => reject(new Error(`the gateway exited (${code}):\n${log}`)));
  });
}

let gateway;
let browser;

before(async () => {
  mkdirSync(shots, { recursive: true });
  gateway = await startGateway(['--demo-row-interval', '1s']);
  browser = await puppeteer.launch({
    executablePath: chromium,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
    ],
  });
});

after(async () => {
  await browser?.close();
  gateway?.child.kill();
});

/**
 * A new page that fails every request leaving the gateway's origin and records it, along
 * with console errors, uncaught exceptions and WebSocket URLs.
 */
async function openPage() {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  await page.setViewport({ width: 1400, height: 900 });
  page.setDefaultTimeout(TIMEOUT);
  const seen = { foreign: [], errors: [], sockets: [] };
  const origin = new URL(gateway.base).origin;
  await page.setRequestInterception(true);
  page.on('request', (request) => {
    const url = request.url();
    if (url.startsWith('data:') || new URL(url).origin === origin) {
      request.continue();
    } else {
      seen.foreign.push(url);
      request.abort('blockedbyclient');
    }
  });
  page.on('console', (message) => {
    if (message.type() === 'error') seen.errors.push(message.text());
  });
  page.on('pageerror', (error) => seen.errors.push(String(error)));
  const cdp = await page.createCDPSession();
  await cdp.send('Network.enable');
  cdp.on('Network.webSocketCreated', ({ url }) => seen.sockets.push(url));
  return { page, seen, close: () => context.close() };
}

/** Waits until GraphiQL has loaded the schema (the docs button is live) and the editors exist. */
async function whenReady(page) {
  await page.waitForSelector('.graphiql-container');
  await page.waitForSelector('.graphiql-query-editor .CodeMirror');
  await page.waitForFunction(
    () => !document.querySelector('.graphiql-spinner') && document.querySelector('.graphiql-sidebar'),
  );
}

/** The response pane's text once `predicate(text)` holds; on a timeout, what it showed. */
async function responseWhen(page, predicate) {
  const read = () =>
    page.$eval('.graphiql-response .CodeMirror', (e) => e.CodeMirror.getValue()).catch(() => '');
  const deadline = Date.now() + TIMEOUT;
  let text = '';
  while (Date.now() < deadline) {
    text = await read();
    if (predicate(text)) return text;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the response pane never matched ${predicate}; it shows:\n${text}`);
}

function assertClean(seen) {
  assert.deepEqual(seen.foreign, [], 'requests left the gateway origin');
  assert.deepEqual(seen.errors, [], 'console errors');
  for (const socket of seen.sockets) {
    assert.equal(new URL(socket).host, new URL(gateway.base).host, `WebSocket to ${socket}`);
  }
}

describe('GraphiQL on an air-gapped network', () => {
  it('renders from the gateway alone, with the demo token and an example query', async () => {
    const { page, seen, close } = await openPage();
    const response = await page.goto(`${gateway.base}/`);
    assert.equal(new URL(page.url()).pathname, '/graphql', 'GET / sends a browser to GraphiQL');
    assert.equal(response.headers()['cache-control'], 'no-store');
    assert.match(response.headers()['content-security-policy'], /script-src 'self'/);
    await whenReady(page);
    const headers = await page.$eval(HEADERS_EDITOR, (e) => e.CodeMirror.getValue());
    assert.match(headers, /"Coder-Session-Token": "demoowner0-/);
    const query = await page.$eval('.graphiql-query-editor .CodeMirror', (e) => e.CodeMirror.getValue());
    assert.match(query, /auditLogs\(limit: 10\)/);
    await page.click('.graphiql-execute-button');
    const text = await responseWhen(page, (t) => t.includes('"resourceType"'));
    assert.match(text, /"count": \d+/);
    await page.screenshot({ path: join(shots, '01-demo-example-run.png') });
    assertClean(seen);
    await close();
  });

  it('opens a ?query= link, runs it, and keeps the URL in step with the editor', async () => {
    const { page, seen, close } = await openPage();
    const query = 'query Linked { auditLogs(limit: 3) { count auditLogs { id action } } }';
    await page.goto(`${gateway.base}/graphql?query=${encodeURIComponent(query)}`);
    await whenReady(page);
    const text = await responseWhen(page, (t) => t.includes('"action"'));
    assert.equal(JSON.parse(text).data.auditLogs.auditLogs.length, 3);
    await page.screenshot({ path: join(shots, '02-query-link-ran.png') });

    await page.click('.graphiql-query-editor .CodeMirror');
    await page.keyboard.down('Control');
    await page.keyboard.press('End');
    await page.keyboard.up('Control');
    await page.keyboard.type(' # edited');
    await page.waitForFunction(() =>
      new URLSearchParams(window.location.search).get('query')?.endsWith('# edited'),
    );
    assertClean(seen);
    await close();
  });

  it('opens a link with variables and an operation name, and runs the named operation', async () => {
    const { page, seen, close } = await openPage();
    const query = [
      'query First { auditLogs(limit: 1) { count } }',
      'query Second($n: Int!) { auditLogs(limit: $n) { auditLogs { id } } }',
    ].join('\n');
    const search = new URLSearchParams({
      query,
      variables: '{"n": 4}',
      operationName: 'Second',
    });
    await page.goto(`${gateway.base}/graphql?${search}`);
    await whenReady(page);
    const text = await responseWhen(page, (t) => t.includes('"id"'));
    assert.equal(JSON.parse(text).data.auditLogs.auditLogs.length, 4);
    // The first of the two editor tools is the variables editor.
    const variables = await page.$eval('.graphiql-editor-tool .graphiql-editor .CodeMirror', (e) =>
      e.CodeMirror.getValue(),
    );
    assert.equal(variables, '{"n": 4}');
    assertClean(seen);
    await close();
  });

  it('builds a query in the explorer: auditLogs and its fields, two picked, rows back', async () => {
    const { page, seen, close } = await openPage();
    await page.goto(`${gateway.base}/graphql`);
    await whenReady(page);
    // A new tab, so the explorer starts from an empty document.
    await page.click('.graphiql-tab-add');
    await page.click('button[aria-label="Show GraphiQL Explorer"]');
    // The explorer lists fields as spans; a picked object field lists its own below it.
    const field = (name) => `.graphiql-explorer-root span[data-field-name="${name}"]`;
    await page.waitForSelector(field('auditLogs'));
    await page.click(field('auditLogs'));
    await page.waitForSelector(field('count'));
    const listed = await page.$$eval('.graphiql-explorer-root span[data-field-name]', (spans) =>
      spans.map((s) => s.dataset.fieldName),
    );
    assert.deepEqual(listed, ['auditLogs', 'auditLogs', 'count', 'countCap', 'edges', 'nodes', 'pageInfo']);
    const [, pageRows] = await page.$$(field('auditLogs'));
    await pageRows.click();
    await page.waitForSelector(field('action'));
    await page.click(field('action'));
    await page.click(field('time'));
    const built = await page.$eval('.graphiql-query-editor .CodeMirror', (e) => e.CodeMirror.getValue());
    assert.match(built, /auditLogs\(limit: 10\) \{\s+auditLogs \{\s+(time\s+action|action\s+time)\s+\}\s+\}/);
    await page.click('.graphiql-execute-button');
    const text = await responseWhen(page, (t) => t.includes('"action"') && t.includes('"time"'));
    const rows = JSON.parse(text).data.auditLogs.auditLogs;
    assert.equal(rows.length, 10);
    assert.deepEqual(Object.keys(rows[0]).sort(), ['action', 'time']);
    await page.screenshot({ path: join(shots, '03-explorer-two-fields.png') });
    // The Relay connection is there too: where the page ends, for the next page's `after`.
    await page.click(field('pageInfo'));
    await page.waitForSelector(field('endCursor'));
    await page.click(field('endCursor'));
    await page.click(field('hasNextPage'));
    await page.click('.graphiql-execute-button');
    const paged = await responseWhen(page, (t) => t.includes('"endCursor"') && t.includes('"hasNextPage"'));
    const info = JSON.parse(paged).data.auditLogs.pageInfo;
    assert.equal(typeof info.endCursor, 'string');
    assert.equal(info.hasNextPage, true);
    assertClean(seen);
    await close();
  });

  it('never stores a typed token in localStorage or sessionStorage', async () => {
    const { page, seen, close } = await openPage();
    await page.goto(`${gateway.base}/graphql`);
    await whenReady(page);
    const token = 'typedsecret-Zq8vX2mN4pL6rT0wY3aB5cD';
    // An empty token field, then the token typed key by key, as a person would.
    await page.$eval(HEADERS_EDITOR, (e) => {
      e.CodeMirror.setValue('{"Coder-Session-Token": ""}');
      e.CodeMirror.focus();
      e.CodeMirror.setCursor({ line: 0, ch: 25 });
    });
    await page.keyboard.type(token);
    const typed = await page.$eval(HEADERS_EDITOR, (e) => e.CodeMirror.getValue());
    assert.equal(JSON.parse(typed)['Coder-Session-Token'], token);
    await page.click('.graphiql-execute-button');
    // The demo Coder does not know this token: the answer proves it was the one sent.
    await responseWhen(page, (t) => t.includes('UNAUTHENTICATED'));
    // GraphiQL debounces its writes to storage by half a second.
    await new Promise((r) => setTimeout(r, 1500));
    const stored = await page.evaluate(() => {
      const dump = (s) => Array.from({ length: s.length }, (_, i) => `${s.key(i)}=${s.getItem(s.key(i))}`);
      return { local: dump(localStorage), session: dump(sessionStorage), cookie: document.cookie, url: window.location.href };
    });
    for (const [where, value] of Object.entries(stored)) {
      assert.ok(!JSON.stringify(value).includes(token), `the token is in ${where}: ${JSON.stringify(value)}`);
      assert.ok(!JSON.stringify(value).includes(DEMO_TOKEN_PREFIX), `the demo token is in ${where}`);
    }
    await page.screenshot({ path: join(shots, '04-typed-token-not-stored.png') });
    assertClean(seen);
    await close();
  });

  it('streams the live tail over graphql-transport-ws with the token from the headers editor', async () => {
    const { page, seen, close } = await openPage();
    const query = 'subscription Live { auditLogAdded { cursor auditLog { id action time } } }';
    await page.goto(`${gateway.base}/graphql?query=${encodeURIComponent(query)}`);
    await whenReady(page);
    const text = await responseWhen(page, (t) => t.includes('"auditLogAdded"'));
    assert.match(text, /"cursor": "/);
    assert.ok(seen.sockets.length >= 1, 'a WebSocket was opened');
    await page.screenshot({ path: join(shots, '05-subscription-streaming.png') });
    await page.click('.graphiql-execute-button');
    assertClean(seen);
    await close();
  });
});

describe('GraphiQL with --disable-introspection', () => {
  let strict;
  before(async () => {
    strict = await startGateway(['--disable-introspection']);
  });
  after(() => strict?.child.kill());

  it('shows the policy, not a broken schema', async () => {
    const context = await browser.createBrowserContext();
    const page = await context.newPage();
    await page.setViewport({ width: 1400, height: 900 });
    await page.goto(`${strict.base}/graphql`);
    await page.waitForSelector('.graphiql-container');
    const body = await page.evaluate(async () => {
      const response = await fetch('/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
        body: JSON.stringify({ query: '{ __schema { queryType { name } } }' }),
      });
      return response.json();
    });
    assert.equal(body.errors[0].extensions.code, 'INTROSPECTION_DISABLED');
    assert.match(body.errors[0].message, /--disable-introspection/);
    await page.screenshot({ path: join(shots, '06-introspection-disabled.png') });
    await context.close();
  });
});
