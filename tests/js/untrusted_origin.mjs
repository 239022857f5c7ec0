// A deployed page against the API origin's browser storage, in headless Chromium.
//
//   node untrusted_origin.mjs <API base url> <site url>
//
// 1. GraphiQL on the API origin: a bearer token typed into its headers pane, a query run with it; then every
//    localStorage entry of the API origin is listed (the token must not be there).
// 2. The API origin stores a secret (as a web app would); the site's page (its own script, tests/security)
//    tries to read it: its own localStorage, an iframe of the API origin, a fetch to the API.
// 3. The site's URL asked on the API origin ends on the untrusted origin.
// Prints one JSON object.
import { chromium } from 'playwright-core';

const [api, site] = process.argv.slice(2);
const result = {};
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
});
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${api}/graphql`);
  await page.waitForSelector('.graphiql-execute-button', { timeout: 30000 });
  await page.getByRole('button', { name: 'Headers' }).click();
  const headers = page.locator('.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror').last();
  await headers.click();
  await page.keyboard.type('{"Authorization": "Bearer TYPED-TOKEN-3b7"');
  result.headersPane = await headers.textContent();
  await page.click('.graphiql-execute-button');
  await page.waitForFunction(() => document.querySelector('.result-window')?.textContent?.includes('{'), null, {
    timeout: 30000,
  });
  // The history entry is written on execution; the tabs' state after a 500 ms debounce: give both their chance.
  await page.waitForFunction(() => localStorage.getItem('graphiql:queries'), null, { timeout: 30000 });
  await page.waitForTimeout(1500);
  await page.evaluate(() => localStorage.setItem('app-token', 'API-ORIGIN-SECRET-91c'));
  result.apiStorage = await page.evaluate(() => JSON.stringify(Object.entries(localStorage)));

  const attacker = await context.newPage();
  const answer = await attacker.goto(`${site}?api=${encodeURIComponent(api)}`);
  result.siteHeaders = answer.headers();
  await attacker.waitForFunction(() => window.__result, null, { timeout: 30000 });
  result.site = await attacker.evaluate(() => window.__result);
  result.siteOrigin = await attacker.evaluate(() => location.origin);

  const moved = await context.newPage();
  await moved.goto(`${api}${new URL(site).pathname}`);
  result.movedTo = new URL(moved.url()).origin;
} catch (error) {
  result.error = String(error).slice(0, 800);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(result) + '\n');
