// Drives a real Firefox ESR with the unpacked Firefox build of the add-on, over WebDriver BiDi
// (puppeteer-core; no geckodriver). Launched by tests/e2e/test_firefox.py, which starts the
// real service and serves the test page; this script plays the user and prints what the
// panel showed as one JSON line on stdout, for the Python test to assert on.
//
//   node drive.mjs '{"scenario": "pair-and-summarize" | "refused" | "video" | "native", "firefox", "addon",
//                    "uuid", "serverUrl", "token", "pageUrl", "output", "home"?}'
//
// `home`: Firefox's HOME, whose ~/.mozilla/native-messaging-hosts holds the host manifest
// `tiangong install --browser firefox` wrote (the "native" scenario).
//
// The add-on's origin is chosen before start (pref extensions.webextensions.uuids) so the
// service can be started with --allow-origin for it. Opening moz-extension:// pages over BiDi
// needs --remote-allow-system-access, and a navigation to one may never report that it
// finished although the page loaded: navigate without waiting, then poll the page.

import path from 'node:path';

import puppeteer from 'puppeteer-core';

const GECKO_ID = 'tiangong@tiangong.local';
const WAIT_MS = 20_000;

const config = JSON.parse(process.argv[2]);
// The panel once open: when a wait fails, what it showed is the first thing to know.
let shownPanel = null;
const base = `moz-extension://${config.uuid}`;

async function launch() {
  return puppeteer.launch({
    browser: 'firefox',
    executablePath: config.firefox,
    headless: true,
    args: ['--remote-allow-system-access'],
    extraPrefsFirefox: {
      'extensions.webextensions.uuids': JSON.stringify({ [GECKO_ID]: config.uuid }),
      // Add-on pages' console lines reach stdout: what the test prints when it fails.
      'devtools.console.stdout.content': true,
      'intl.locale.requested': 'en-US',
    },
    // The browser's own output is the test's diagnostics, on stderr (stdout carries the result).
    dumpio: false,
    ...(config.home ? { env: { ...process.env, HOME: config.home } } : {}),
  });
}

/** A new tab at `url`. A web page's load is awaited; an extension page is polled for (see
 * above), by asking it again until it answers: a wait set up in the blank tab before the
 * navigation can lose its document to the navigation on a busy machine. */
async function open(browser, url, ready) {
  const page = await browser.newPage();
  page.setDefaultTimeout(WAIT_MS);
  if (!url.startsWith('moz-extension:')) {
    await page.goto(url, { waitUntil: 'load', timeout: WAIT_MS });
  } else {
    page.goto(url, { waitUntil: 'load', timeout: WAIT_MS }).catch(() => {});
    await pollUntil(page, (href) => location.href === href && document.readyState === 'complete', url);
  }
  if (ready) await page.waitForSelector(ready);
  return page;
}

async function pollUntil(page, condition, arg) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    try {
      if (await page.evaluate(condition, arg)) return;
    } catch {
      // The document went away under the question (the navigation): ask the next one.
    }
    if (Date.now() > deadline) throw new Error(`${page.url()} did not become ready in ${WAIT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function configure(browser, token) {
  const options = await open(browser, `${base}/options/options.html`, '[data-testid=save]');
  await fill(options, '[data-testid=server-url]', config.serverUrl);
  await fill(options, '[data-testid=token]', token);
  await options.click('[data-testid=save]');
  await options.waitForFunction(() => document.getElementById('saved').textContent !== '');
  return options;
}

async function fill(page, selector, value) {
  await page.$eval(selector, (input) => { input.value = ''; });
  if (value) await page.type(selector, value);
}

/** The web page in a tab, and the panel opened as a tab acting on it (`?tabId=`). */
async function pageAndPanel(browser, extensionPage) {
  const page = await open(browser, config.pageUrl);
  const tabId = await extensionPage.evaluate(
    async (url) => (await browser.tabs.query({})).find((tab) => tab.url === url)?.id ?? null,
    config.pageUrl,
  );
  if (tabId === null) throw new Error(`no tab for ${config.pageUrl}`);
  const panel = await open(browser, `${base}/sidepanel/panel.html?tabId=${tabId}`, '[data-testid=summarize]');
  await panel.waitForFunction((id) => document.body.dataset.tabId === String(id), {}, tabId);
  await panel.setViewport({ width: 252, height: 720 }); // Firefox's default sidebar width
  shownPanel = panel;
  return { page, panel };
}

const connection = (panel, state) => panel.waitForFunction((s) => document.body.dataset.connection === s, {}, state);
const statusOf = (panel) =>
  panel.evaluate(() => ({
    connection: document.body.dataset.connection,
    line: document.querySelector('[data-testid=status]').textContent.trim(),
    detail: document.getElementById('status-detail').hidden ? '' : document.getElementById('status-detail').textContent,
    pairingShown: !document.getElementById('pairing').hidden,
  }));

async function pairAndSummarize(browser) {
  // No token yet: the panel's pairing card pairs, as on a first run.
  const options = await configure(browser, '');
  const { panel } = await pageAndPanel(browser, options);
  await connection(panel, 'unpaired');
  const unpaired = await statusOf(panel);
  await panel.type('#pairing-token', config.token);
  await panel.click('#pairing-form button[type=submit]');
  await connection(panel, 'connected');
  const connected = await statusOf(panel);
  await panel.click('[data-testid=summarize]');
  await panel.waitForFunction(() => document.body.dataset.requestId && document.body.dataset.requestState === 'done');
  const answer = await panel.evaluate(() => {
    const id = document.body.dataset.requestId;
    const card = document.querySelector(`[data-testid=answer][data-request-id="${id}"]`);
    return {
      id,
      text: card.querySelector('.answer-body').textContent,
      citations: card.querySelectorAll('[data-testid=citation]').length,
    };
  });
  await panel.screenshot({ path: path.join(config.output, 'firefox-panel-summary.png') });
  return { unpaired, connected, answer };
}

async function refused(browser) {
  const options = await configure(browser, config.token);
  const { panel } = await pageAndPanel(browser, options);
  // The socket is refused (403) and /health answers 200: wait for the probe's verdict.
  await panel.waitForFunction(
    () => !document.getElementById('status-detail').hidden && document.getElementById('status-detail').textContent.includes('--allow-origin'),
  );
  await panel.screenshot({ path: path.join(config.output, 'firefox-panel-refused.png') });
  return { status: await statusOf(panel) };
}

/** A captioned video summarized from its captions; a chip's click seeks the video. */
async function video(browser) {
  const options = await configure(browser, config.token);
  const { page, panel } = await pageAndPanel(browser, options);
  await connection(panel, 'connected');
  await panel.click('[data-testid=summarize]');
  await panel.waitForFunction(() => document.body.dataset.requestId && ['done', 'error'].includes(document.body.dataset.requestState));
  const answer = await panel.evaluate(() => {
    const card = document.querySelector(`[data-testid=answer][data-request-id="${document.body.dataset.requestId}"]`);
    const chips = [...card.querySelectorAll('[data-testid=citation]')];
    return { state: card.dataset.state, text: card.textContent, times: chips.map((chip) => Number(chip.dataset.time)), n: chips.at(-1)?.dataset.n ?? null };
  });
  if (answer.n === null) return { answer };
  await panel.click(`[data-testid=answer][data-request-id] [data-testid=citation][data-n="${answer.n}"]`);
  await panel.waitForFunction((n) => document.body.dataset.citation === `found-${n}`, {}, answer.n);
  const seeked = await page.evaluate(() => document.querySelector('video').currentTime);
  return { answer, seeked };
}

/** No token, no service: opening the panel has the native host start the service. */
async function native(browser) {
  const options = await open(browser, `${base}/options/options.html`, '[data-testid=save]');
  const { panel } = await pageAndPanel(browser, options);
  // The host starts Python and the service: longer than a connection takes.
  await panel.waitForFunction(() => document.body.dataset.connection === 'connected', { timeout: 4 * WAIT_MS });
  const connected = await statusOf(panel);
  const stored = await options.evaluate(() => browser.storage.local.get(['serverUrl', 'token']));
  await panel.click('[data-testid=summarize]');
  await panel.waitForFunction(() => document.body.dataset.requestId && ['done', 'error'].includes(document.body.dataset.requestState));
  const answer = await panel.evaluate(() => {
    const card = document.querySelector(`[data-testid=answer][data-request-id="${document.body.dataset.requestId}"]`);
    return { state: card.dataset.state, text: card.querySelector('.answer-body').textContent };
  });
  return { connected, stored, answer };
}

const SCENARIOS = { 'pair-and-summarize': pairAndSummarize, refused, video, native };

const browser = await launch();
let result;
try {
  const id = await browser.installExtension(config.addon);
  if (id !== GECKO_ID) throw new Error(`the add-on was installed as ${id}, not ${GECKO_ID}`);
  result = { ok: true, version: await browser.version(), ...(await SCENARIOS[config.scenario](browser)) };
} catch (error) {
  const shown = shownPanel ? await statusOf(shownPanel).catch(() => null) : null;
  result = { ok: false, error: String(error?.stack ?? error), shown };
} finally {
  await browser.close();
}
process.stdout.write(`${JSON.stringify(result)}\n`);
