// GraphiQL and the API docs page in headless Chromium with the network off: every request that does not go to
// the runplane server under test is aborted (and recorded), so a page that needed a CDN would stay blank.
//
//   node offline_pages.mjs <server base url>
//
// Prints one JSON object: what each page showed after running a request, and the requests that were blocked.
import { chromium } from 'playwright-core';

const [base] = process.argv.slice(2);
const origin = new URL(base).origin;
const result = { blocked: [], graphiql: null, docs: null };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
});
try {
  const context = await browser.newContext();
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith(origin) || url.startsWith('data:')) return route.continue();
    result.blocked.push(url);
    return route.abort('internetdisconnected');
  });
  const page = await context.newPage();
  page.on('pageerror', (error) => (result.pageErrors = [...(result.pageErrors || []), String(error).slice(0, 300)]));

  // GraphiQL (its default document is `{ __typename }`): run it with the execute button; the answer appears in
  // the result pane. (`/graphql?query=` would execute the query itself, not open GraphiQL.)
  await page.goto(`${base}/graphql`);
  await page.waitForSelector('.graphiql-execute-button', { timeout: 20000 });
  await page.click('.graphiql-execute-button');
  await page.waitForFunction(
    () => document.querySelector('.result-window')?.textContent?.includes('"Query"'),
    null,
    { timeout: 20000 },
  );
  result.graphiql = await page.textContent('.result-window');

  // The API docs: open the first operation (GET /api/projects), "Try it out", "Execute": the live response is the
  // server's answer (401 without a token: a real round trip through the page).
  const docs = await context.newPage();
  await docs.goto(`${base}/api/docs`);
  await docs.waitForFunction(() => document.querySelectorAll('.opblock-get').length > 0, null, { timeout: 60000 });
  await docs.evaluate(() => document.querySelector('.opblock-get .opblock-summary-control').click());
  await docs.waitForFunction(() => document.querySelector('.opblock-get .try-out__btn'), null, { timeout: 20000 });
  await docs.evaluate(() => document.querySelector('.opblock-get .try-out__btn').click());
  await docs.waitForFunction(() => document.querySelector('.opblock-get .execute'), null, { timeout: 20000 });
  await docs.evaluate(() => document.querySelector('.opblock-get .execute').click());
  await docs.waitForSelector('.live-responses-table tbody .response-col_status', { timeout: 20000 });
  result.docs = {
    status: (await docs.textContent('.live-responses-table tbody .response-col_status')).trim(),
    body: await docs.textContent('.live-responses-table .highlight-code'),
    operations: await docs.locator('.opblock').count(),
  };
} catch (error) {
  result.error = String(error).slice(0, 500);
  if (process.env.SCREENSHOT) await browser.contexts()[0]?.pages()[0]?.screenshot({ path: process.env.SCREENSHOT });
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(result) + '\n');
